"""Turning what users pass as inputs (numpy arrays, torch tensors, anything with __dlpack__, lists) into what
kiln._kiln.Context.set_input takes.

Zero-copy: a C-contiguous numpy array or CPU tensor exported through DLPack is read in place by the binding;
kiln's ExecutionContext.set_input then copies it once into the engine's own memory (as TensorRT's and ONNX
Runtime's host inputs are copied). Copied first: non-contiguous arrays (made contiguous), tensors that require
grad (detached, no copy), CUDA tensors (copied to the host: kiln's public API takes host tensors; a device
pointer path is future work). Outputs are always new numpy arrays (the engine reuses its output buffers on the
next run); torch.from_numpy(out) wraps them without a copy.
"""
from typing import Any

import numpy as np

from ._kiln import Error

_DLPACK_CPU, _DLPACK_CUDA, _DLPACK_CUDA_HOST = 1, 2, 3


def host_array(name: str, value: Any) -> Any:
    """Something Context.set_input accepts, or a numpy object/str array (strings)."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "OUS":
            return value
        return _c_order(value)
    if hasattr(value, "__dlpack__") and hasattr(value, "__dlpack_device__"):
        if getattr(value, "requires_grad", False):
            value = value.detach()
        device_type = int(value.__dlpack_device__()[0])
        if device_type not in (_DLPACK_CPU, _DLPACK_CUDA_HOST):
            if device_type == _DLPACK_CUDA and hasattr(value, "cpu"):
                value = value.cpu()  # host copy: see the module docstring
            else:
                raise Error(f"input '{name}': arrays on DLPack device {device_type} are not supported; "
                            "pass a host array")
        if hasattr(value, "is_contiguous") and not value.is_contiguous():
            value = value.contiguous()
        return value
    return _c_order(np.asarray(value))


def _c_order(a: np.ndarray) -> np.ndarray:
    # Not np.ascontiguousarray: it turns a 0-d array into a 1-d one.
    return a if a.flags.c_contiguous else a.copy(order="C")


def set_input(context: Any, name: str, value: Any) -> None:
    array = host_array(name, value)
    if isinstance(array, np.ndarray) and array.dtype.kind in "OUS":
        context.set_input_strings(name, list(array.shape), [str(s) for s in array.reshape(-1)])
        return
    try:
        context.set_input(name, array)
    except TypeError as e:  # nanobind refused the array (element type, device)
        raise Error(f"input '{name}': {type(value).__name__} cannot be read as a host tensor: {e}") from None


def output(context: Any, name: str) -> np.ndarray:
    value = context.output(name)
    if isinstance(value, list):  # strings
        return np.array(value, dtype=object).reshape(context.output_dims(name))
    return value
