"""numpy <-> ONNX element types, including ml_dtypes' bfloat16 and float8 types."""

import numpy as np
import onnx

try:
    import ml_dtypes
except ImportError:  # ml_dtypes is optional; bf16/fp8 constants then need it installed
    ml_dtypes = None


def _onnx_to_numpy():
    table = {}
    for elem_type in onnx.TensorProto.DataType.values():
        try:
            table[elem_type] = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type))
        except Exception:
            continue
    if ml_dtypes is not None:
        exotic = {
            onnx.TensorProto.BFLOAT16: ml_dtypes.bfloat16,
            onnx.TensorProto.FLOAT8E4M3FN: ml_dtypes.float8_e4m3fn,
            onnx.TensorProto.FLOAT8E4M3FNUZ: ml_dtypes.float8_e4m3fnuz,
            onnx.TensorProto.FLOAT8E5M2: ml_dtypes.float8_e5m2,
            onnx.TensorProto.FLOAT8E5M2FNUZ: ml_dtypes.float8_e5m2fnuz,
        }
        for elem_type, dt in exotic.items():
            table[elem_type] = np.dtype(dt)
        if hasattr(onnx.TensorProto, "INT4") and hasattr(ml_dtypes, "int4"):
            table[onnx.TensorProto.INT4] = np.dtype(ml_dtypes.int4)
            table[onnx.TensorProto.UINT4] = np.dtype(ml_dtypes.uint4)
    return table


ONNX_TO_NUMPY = _onnx_to_numpy()
# The reverse map prefers the canonical ONNX type for each numpy dtype.
NUMPY_TO_ONNX = {}
for _elem, _dt in sorted(ONNX_TO_NUMPY.items(), reverse=True):
    NUMPY_TO_ONNX[_dt] = _elem
for _elem in (onnx.TensorProto.FLOAT16, onnx.TensorProto.FLOAT, onnx.TensorProto.BOOL, onnx.TensorProto.STRING):
    NUMPY_TO_ONNX[ONNX_TO_NUMPY[_elem]] = _elem
if ml_dtypes is not None:
    for _elem in (onnx.TensorProto.BFLOAT16, onnx.TensorProto.FLOAT8E4M3FN, onnx.TensorProto.FLOAT8E5M2):
        NUMPY_TO_ONNX[ONNX_TO_NUMPY[_elem]] = _elem


def is_onnx_enum(dtype):
    return isinstance(dtype, int) and not isinstance(dtype, bool)


def to_numpy(elem_type):
    """ONNX elem type -> numpy dtype; types numpy can't hold stay as the ONNX enum."""
    if elem_type in ONNX_TO_NUMPY:
        return ONNX_TO_NUMPY[elem_type]
    return elem_type


def to_onnx(dtype):
    """numpy dtype (or an ONNX enum, passed through) -> ONNX elem type."""
    if dtype is None:
        return onnx.TensorProto.UNDEFINED
    if is_onnx_enum(dtype):
        return int(dtype)
    dt = np.dtype(dtype)
    if dt in NUMPY_TO_ONNX:
        return NUMPY_TO_ONNX[dt]
    if dt.kind in ("U", "S", "O"):
        return onnx.TensorProto.STRING
    raise TypeError(f"no ONNX element type for numpy dtype {dt}")
