"""kiln.Builder, kiln.Engine, kiln.Context: the TensorRT-style API over kiln._kiln."""
import os
import tempfile
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from . import _convert, _kiln
from ._kiln import Error
from ._log import BuildLog

ModelSource = Union[str, "os.PathLike[str]", bytes, Any]  # a path, ONNX bytes or an onnx.ModelProto
Profile = Mapping[str, Tuple[Sequence[int], Sequence[int], Sequence[int]]]

PRECISIONS = ("fp32", "tf32", "fp16", "bf16")


class NodeArg:
    """An input or output as ONNX Runtime describes it: name, shape (ints; str or None where dynamic), type."""

    def __init__(self, name: str, type: str, shape: Optional[List[Union[int, str, None]]]) -> None:
        self.name = name
        self.type = type
        self.shape = shape

    def __repr__(self) -> str:
        return f"NodeArg(name={self.name!r}, type={self.type!r}, shape={self.shape!r})"


def load_model(model: ModelSource) -> "_kiln.Model":
    """Imports an ONNX model from a path, bytes, or an onnx.ModelProto (serialized; weights inline)."""
    if isinstance(model, (bytes, bytearray, memoryview)):
        return _kiln.Model.from_bytes(bytes(model))
    if hasattr(model, "SerializeToString"):
        return _kiln.Model.from_bytes(model.SerializeToString())
    return _kiln.Model.from_path(os.fspath(model))


def build_options(device: str = "cpu", precision: str = "fp32", *, tf32: Optional[bool] = None, threads: int = 0,
                  profiles: Optional[Iterable[Profile]] = None,
                  input_shapes: Optional[Mapping[str, Sequence[int]]] = None,
                  timing_cache: Optional[str] = None, allow_host_fallback: bool = False,
                  reference_kernels: bool = False, skip_rewrites: Iterable[str] = (),
                  max_folded_bytes: Optional[int] = None, allow_unknown_ops: bool = False,
                  verbose: bool = False) -> "_kiln.BuildOptions":
    if precision not in PRECISIONS:
        raise Error(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    o = _kiln.BuildOptions()
    o.device = device
    o.precision = precision
    # "fp32" is strict fp32 (ONNX Runtime's); "tf32" lets fp32 convolutions and GEMMs use TF32 tensor cores.
    o.tf32 = (precision != "fp32") if tf32 is None else tf32
    o.threads = threads
    o.timing_cache_file = os.fspath(timing_cache) if timing_cache else ""
    o.allow_host_fallback = allow_host_fallback
    o.reference_kernels = reference_kernels
    o.skip_rewrites = list(skip_rewrites)
    o.allow_unknown_ops = allow_unknown_ops
    o.verbose = verbose
    if max_folded_bytes is not None:
        o.max_folded_bytes = max_folded_bytes
    if input_shapes:
        o.input_shapes = {k: [int(d) for d in v] for k, v in input_shapes.items()}
    if profiles:
        o.profiles = [{name: _kiln.ShapeRange([int(d) for d in lo], [int(d) for d in opt], [int(d) for d in hi])
                       for name, (lo, opt, hi) in p.items()} for p in profiles]
    return o


class Context:
    """Per-inference state (activation memory, bound inputs). One per thread."""

    def __init__(self, engine: "Engine", native: Any) -> None:
        self._engine = engine
        self._native = native

    def run(self, input_feed: Mapping[str, Any], output_names: Optional[Sequence[str]] = None, *,
            output_device: Optional[str] = None) -> List[Any]:
        """Sets the inputs, runs, and returns the outputs named (all, in the engine's order, for None) as numpy
        arrays, or as torch CUDA tensors with output_device="cuda" (InferenceSession.run says how)."""
        device_memory = self._engine.device == "cuda"
        on_device = _convert.check_output_device(output_device, self._engine.device)
        # Converted inputs stay referenced until run(): a dynamic engine reads them there, not at set_input.
        feed = {name: _convert.input_array(name, value, device_memory) for name, value in input_feed.items()}
        for name, value in feed.items():
            _convert.set_input(self._native, name, value, device_memory)
        if device_memory:
            self._native.set_data_transfers(not on_device)
        self._native.run()
        outputs = self._engine.get_outputs()
        names = [o.name for o in outputs] if output_names is None else list(output_names)
        types = {o.name: o.type for o in outputs}
        for n in names:
            if n not in types:
                raise Error(f"no output '{n}'; the engine's outputs are: {', '.join(types)}")
        return _convert.outputs(self._native, names, [types[n] for n in names], on_device)

    def profile(self, input_feed: Mapping[str, Any], runs: int = 1) -> Dict[str, float]:
        """Runs `runs` times with per-layer timing; returns {layer name: mean milliseconds} in layer order."""
        self._native.set_profiling(True)
        try:
            total: Dict[str, float] = {}
            for _ in range(max(1, runs)):
                self.run(input_feed)
                layers = self._native.layers()
                for (name, _op, _kernel, _tactic), ms in zip(layers, self._native.layer_times_ms()):
                    total[name] = total.get(name, 0.0) + ms
            return {k: v / max(1, runs) for k, v in total.items()}
        finally:
            self._native.set_profiling(False)

    def last_run_times(self) -> Dict[str, float]:
        """{"h2d_ms", "compute_ms", "d2h_ms"} of the last run."""
        h2d, compute, d2h = self._native.last_run_times()
        return {"h2d_ms": h2d, "compute_ms": compute, "d2h_ms": d2h}


class Engine:
    """An optimized model with a kernel per layer and planned memory (kiln::Engine)."""

    def __init__(self, native: Any) -> None:
        self._native = native

    # -- files
    def serialize(self) -> bytes:
        """The engine file's bytes (kiln's engine format; Engine.deserialize reads them back)."""
        with tempfile.TemporaryDirectory(prefix="kiln-") as d:
            path = os.path.join(d, "engine.kiln")
            self._native.save(path)
            with open(path, "rb") as f:
                return f.read()

    @staticmethod
    def deserialize(data: bytes, threads: int = 0) -> "Engine":
        """An engine from serialize()'s bytes, on the device it was built for."""
        with tempfile.TemporaryDirectory(prefix="kiln-") as d:
            path = os.path.join(d, "engine.kiln")
            with open(path, "wb") as f:
                f.write(data)
            return Engine.load(path, threads)

    @staticmethod
    def load(path: Union[str, "os.PathLike[str]"], threads: int = 0) -> "Engine":
        o = _kiln.BuildOptions()
        o.threads = threads
        return Engine(_kiln.Engine.load(os.fspath(path), o))

    def save(self, path: Union[str, "os.PathLike[str]"]) -> None:
        self._native.save(os.fspath(path))

    # -- what it is
    def get_inputs(self) -> List[NodeArg]:
        return [NodeArg(*i) for i in self._native.inputs()]

    def get_outputs(self) -> List[NodeArg]:
        return [NodeArg(*o) for o in self._native.outputs()]

    @property
    def device(self) -> str:
        return self._native.device()

    def layers(self) -> List[Dict[str, str]]:
        """[{"name", "op", "kernel", "tactic"}] in execution order."""
        return [dict(zip(("name", "op", "kernel", "tactic"), layer)) for layer in self._native.layers()]

    def memory(self) -> Dict[str, int]:
        """Device memory in bytes: {"activations", "weights", "workspace"}."""
        return dict(zip(("activations", "weights", "workspace"), self._native.memory()))

    # -- running
    def create_context(self) -> Context:
        return Context(self, self._native.create_context())

    def run(self, input_feed: Mapping[str, Any], output_names: Optional[Sequence[str]] = None, *,
            output_device: Optional[str] = None) -> List[Any]:
        """One run on a fresh context (create_context() once to run many times)."""
        return self.create_context().run(input_feed, output_names, output_device=output_device)


class Builder:
    """Builds engines (kiln::Engine::build) with TensorRT's knobs.

    device: "cpu" or "cuda"; precision: "fp32" (strict), "tf32", "fp16" or "bf16" (the engine's inputs and outputs
    stay fp32); profiles: shape ranges {input: (min, opt, max)} for dynamic inputs; input_shapes: dims to fix;
    timing_cache: a file the timed kernel choices are read from and written to; allow_host_fallback: layers the
    device has no kernel for run on the host; plugins: plugin libraries to load first; progress: draw the build
    log on stderr (default: when stderr is a terminal).
    """

    def __init__(self, device: str = "cpu", precision: str = "fp32", *, plugins: Iterable[str] = (),
                 progress: Optional[bool] = None, **options: Any) -> None:
        for path in plugins:
            _kiln.load_plugin_library(os.fspath(path))
        self._options = build_options(device, precision, **options)
        self._progress = progress

    def build(self, model: ModelSource) -> Engine:
        """Imports `model` (a path, ONNX bytes or an onnx.ModelProto) and builds an engine."""
        return self.build_model(load_model(model))

    def build_model(self, model: "_kiln.Model", input_shapes: Optional[Mapping[str, Sequence[int]]] = None) -> Engine:
        options = self._options
        if input_shapes:
            options = _copy_options(options)
            options.input_shapes = {k: [int(d) for d in v] for k, v in input_shapes.items()}
        log = BuildLog(self._progress)
        try:
            return Engine(_kiln.Engine.build(model, options, log))
        finally:
            log.close()


def _copy_options(o: "_kiln.BuildOptions") -> "_kiln.BuildOptions":
    c = _kiln.BuildOptions()
    for name in ("device", "threads", "tf32", "timing_cache_file", "reference_kernels", "allow_host_fallback",
                 "input_shapes", "profiles", "skip_rewrites", "max_folded_bytes", "allow_unknown_ops", "verbose"):
        setattr(c, name, getattr(o, name))
    c.precision = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}[o.precision]
    return c
