"""Turning what users pass as inputs (numpy arrays, torch tensors, anything with __dlpack__, lists) into what
kiln._kiln.Context.set_input takes, and outputs into numpy arrays or torch CUDA tensors.

Zero-copy: a C-contiguous numpy array or CPU tensor exported through DLPack is read in place by the binding;
kiln's ExecutionContext.set_input then copies it once into the engine's own memory (as TensorRT's and ONNX
Runtime's host inputs are copied). On a cuda engine a CUDA array (a torch CUDA tensor, anything with a CUDA
__dlpack__) is copied device-to-device into the engine's memory, never through the host, on torch's current
stream (stream 0 for other producers), so work queued there before is seen; a CPU engine copies it to the host
first. Copied first: non-contiguous arrays (made contiguous), tensors that require grad (detached, no copy).
Outputs are new numpy arrays by default (the engine reuses its output buffers on the next run);
torch.from_numpy(out) wraps them without a copy. With output_device="cuda" (cuda engines) they are new torch
CUDA tensors on cuda:0, filled device-to-device on torch's current stream, without a host copy.
"""
import sys
from typing import Any, List, Optional, Sequence

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


def _dlpack_device(value: Any) -> int:
    if isinstance(value, np.ndarray) or not hasattr(value, "__dlpack_device__"):
        return _DLPACK_CPU
    return int(value.__dlpack_device__()[0])


def input_array(name: str, value: Any, device_memory: bool) -> Any:
    """host_array(), except that a CUDA array stays on the device when the engine takes device memory."""
    if not device_memory or _dlpack_device(value) != _DLPACK_CUDA:
        return host_array(name, value)
    if getattr(value, "requires_grad", False):
        value = value.detach()
    if hasattr(value, "is_contiguous") and not value.is_contiguous():
        value = value.contiguous()
    return value


def _stream(value: Any) -> int:
    """torch's current stream on the tensor's device (the one that produced it, as a rule); else stream 0."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        return int(torch.cuda.current_stream(value.device).cuda_stream)
    return 0


def set_input(context: Any, name: str, value: Any, device_memory: bool = False) -> None:
    """Binds one input; device_memory: the engine runs on cuda (CUDA arrays go in device-to-device)."""
    array = input_array(name, value, device_memory)
    if _dlpack_device(array) == _DLPACK_CUDA:
        try:
            context.set_input_device(name, array, _stream(array))
        except TypeError as e:
            raise Error(f"input '{name}': {type(value).__name__} cannot be read as a CUDA tensor: {e}") from None
        return
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


# ONNX Runtime's type names (NodeArg.type) -> torch dtype names.
_TORCH_DTYPES = {"tensor(float)": "float32", "tensor(double)": "float64", "tensor(float16)": "float16",
                 "tensor(bfloat16)": "bfloat16", "tensor(bool)": "bool", "tensor(int8)": "int8",
                 "tensor(int16)": "int16", "tensor(int32)": "int32", "tensor(int64)": "int64",
                 "tensor(uint8)": "uint8", "tensor(uint16)": "uint16", "tensor(uint32)": "uint32",
                 "tensor(uint64)": "uint64", "tensor(complex64)": "complex64", "tensor(complex128)": "complex128"}


def check_output_device(output_device: Optional[str], engine_device: str) -> bool:
    """True when outputs are to stay on the GPU (output_device "cuda"); None and "cpu" give numpy arrays."""
    if output_device in (None, "cpu"):
        return False
    if output_device not in ("cuda", "cuda:0"):
        raise Error(f"output_device must be 'cpu' or 'cuda', not {output_device!r}")
    if engine_device != "cuda":
        raise Error(f"output_device='cuda' needs a cuda engine; this one runs on '{engine_device}'")
    return True


def outputs(context: Any, names: Sequence[str], types: Sequence[str], on_device: bool) -> List[Any]:
    """The outputs as numpy arrays, or (on_device) as new torch CUDA tensors filled without a host copy."""
    if not on_device:
        return [output(context, n) for n in names]
    try:
        import torch
    except ImportError:
        raise Error("output_device='cuda' returns torch tensors: torch is not importable") from None
    device = torch.device("cuda", 0)
    stream = int(torch.cuda.current_stream(device).cuda_stream)
    result = []
    for name, type_name in zip(names, types):
        if type_name not in _TORCH_DTYPES:
            raise Error(f"output '{name}' is {type_name}: torch has no such tensors; use the default output_device")
        out = torch.empty(context.output_dims(name), dtype=getattr(torch, _TORCH_DTYPES[type_name]), device=device)
        context.copy_output_to_device(name, out, stream)
        result.append(out)
    return result
