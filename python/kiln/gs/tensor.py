"""Tensors of a graph: Variable (value known at run time) and Constant (value known now).

A Constant imported from ONNX holds a LazyValues: a reference to the TensorProto,
decoded into numpy only when ``.values`` is first read, so importing a model does
not copy every initializer.
"""

import numpy as np
import onnx
from onnx import numpy_helper

from . import dtypes
from ._synclist import set_links
from .errors import OnnxGraphSurgeonException


class LazyValues:
    """Values of a TensorProto, decoded on first use (``load()``)."""

    def __init__(self, tensor, base_dir=None):
        self.tensor = tensor
        self.base_dir = base_dir
        self.shape = list(tensor.dims)
        self.dtype = dtypes.to_numpy(tensor.data_type)
        itemsize = self.dtype.itemsize if isinstance(self.dtype, np.dtype) else 1
        if tensor.data_type in (onnx.TensorProto.INT4, onnx.TensorProto.UINT4):
            itemsize = 1
        self.nbytes = int(np.prod(self.shape, dtype=np.int64)) * itemsize

    def load(self):
        """Decode the tensor into a new writable numpy array."""
        t = self.tensor
        if t.data_location == onnx.TensorProto.EXTERNAL and self.base_dir is not None:
            t = onnx.TensorProto()
            t.CopyFrom(self.tensor)
            onnx.external_data_helper.load_external_data_for_tensor(t, self.base_dir)
            t.data_location = onnx.TensorProto.DEFAULT
            del t.external_data[:]
        dt = self.dtype
        if isinstance(dt, np.dtype) and dt.type.__module__.startswith("ml_dtypes") and t.raw_data:
            arr = np.frombuffer(t.raw_data, dtype=dt).reshape(self.shape)
        elif isinstance(dt, np.dtype) and dt.type.__module__.startswith("ml_dtypes"):
            # bf16/fp8 without raw_data are stored widened in int32_data.
            bits = np.asarray(t.int32_data, dtype=np.int32)
            width = np.uint16 if dt.itemsize == 2 else np.uint8
            arr = bits.astype(width).view(dt).reshape(self.shape)
        else:
            arr = numpy_helper.to_array(t)
        if not arr.flags.writeable:
            arr = arr.copy()
        return arr

    def __str__(self):
        return f"LazyValues (shape={self.shape}, dtype={self.dtype})"

    __repr__ = __str__


class Tensor:
    """Base class of Variable and Constant; not constructed directly."""

    DYNAMIC = -1

    def __init__(self):
        raise NotImplementedError("Tensor is abstract: construct a Variable or a Constant")

    def __setattr__(self, name, value):
        if name in ("inputs", "outputs"):
            set_links(self, name, value)
        else:
            object.__setattr__(self, name, value)

    def _init_links(self, name):
        self.name = name
        self.inputs = []
        self.outputs = []

    def is_empty(self):
        """Whether this is an omitted optional input/output (empty name)."""
        return self.name == ""

    def to_constant(self, values, data_location=None, export_dtype=None):
        """Turn this tensor into a Constant in place; every node using it sees the change."""
        for field in ("dtype", "shape", "_values", "data_location", "_export_dtype"):
            self.__dict__.pop(field, None)
        self.__class__ = Constant
        self._values = values
        self.data_location = data_location
        self._export_dtype = export_dtype
        return self

    def to_variable(self, dtype=None, shape=[]):
        """Turn this tensor into a Variable in place; every node using it sees the change."""
        if dtype is None and isinstance(self, Constant):
            dtype = self.export_dtype
        for field in ("dtype", "shape", "_values", "data_location", "_export_dtype"):
            self.__dict__.pop(field, None)
        self.__class__ = Variable
        self.dtype = dtype
        self.shape = shape
        if "type" not in self.__dict__:
            self.type = "tensor_type"
        return self

    def i(self, tensor_idx=0, producer_idx=0):
        """An input tensor of a producer: ``self.inputs[producer_idx].inputs[tensor_idx]``."""
        return self.inputs[producer_idx].inputs[tensor_idx]

    def o(self, consumer_idx=0, tensor_idx=0):
        """An output tensor of a consumer: ``self.outputs[consumer_idx].outputs[tensor_idx]``."""
        return self.outputs[consumer_idx].outputs[tensor_idx]

    def __str__(self):
        return f"{type(self).__name__} ({self.name}): (shape={self.shape}, dtype={self.dtype})"

    def __repr__(self):
        return self.__str__()

    def __eq__(self, other):
        """Tensors are equal when their names are (names are unique in a graph)."""
        return isinstance(other, Tensor) and self.name == other.name

    __hash__ = None


class Variable(Tensor):
    """A tensor whose value is only known at run time."""

    def __init__(self, name, dtype=None, shape=None, type="tensor_type"):
        self._init_links(name)
        self.dtype = dtype
        self.shape = shape
        self.type = type

    @staticmethod
    def empty():
        """A nameless Variable: an omitted optional input or output."""
        return Variable(name="")

    def to_constant(self, values, export_dtype=None):
        return super().to_constant(values, export_dtype=export_dtype)

    def copy(self):
        """A copy without the producer/consumer links."""
        return Variable(self.name, self.dtype, self.shape, self.type)


class Constant(Tensor):
    """A tensor whose value is known: a numpy array, or LazyValues decoded on demand."""

    def __init__(self, name, values, data_location=None, export_dtype=None):
        self._init_links(name)
        if not isinstance(values, (np.ndarray, LazyValues)):
            raise OnnxGraphSurgeonException(
                "Provided `values` argument is not a NumPy array or a LazyValues instance. "
                "Please provide a NumPy array or LazyValues instance to construct a Constant. "
                f"Note: Provided `values` parameter was: {values}"
            )
        self._values = values
        self.data_location = data_location
        self._export_dtype = export_dtype

    def to_variable(self, dtype=None, shape=[]):
        return super().to_variable(dtype, shape)

    def copy(self):
        """A copy sharing the same values, without the producer/consumer links."""
        return Constant(self.name, self._values, self.data_location, self._export_dtype)

    @property
    def values(self):
        if isinstance(self._values, LazyValues):
            self._values = self._values.load()
        return self._values

    @values.setter
    def values(self, values):
        self._values = values

    @property
    def shape(self):
        shape = self._values.shape
        return tuple(shape) if isinstance(self._values, np.ndarray) else shape

    @property
    def dtype(self):
        return self._values.dtype

    @property
    def export_dtype(self):
        return self._export_dtype if self._export_dtype is not None else self.dtype

    @export_dtype.setter
    def export_dtype(self, export_dtype):
        self._export_dtype = export_dtype

    def __repr__(self):
        return self.__str__() + "\n" + str(self._values)
