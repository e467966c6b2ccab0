"""kiln.InferenceSession: ONNX Runtime's session API over kiln engines."""
import threading
from collections import OrderedDict
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from . import _convert
from ._builder import Builder, Engine, ModelSource, NodeArg, Profile, load_model
from ._kiln import Error

# Engines kept per distinct input shapes for a model with dynamic inputs and no profile.
_MAX_SHAPE_ENGINES = 8


class InferenceSession:
    """Runs an ONNX model as ONNX Runtime's InferenceSession does, on a kiln engine.

    path_or_bytes: a path, ONNX bytes, or an onnx.ModelProto. device: "cpu" or "cuda". precision: "fp32"
    (strict, ONNX Runtime's), "tf32", "fp16" or "bf16" (inputs and outputs stay fp32). profile: shape ranges
    {input: (min, opt, max)} (or a list of such dicts) for inputs with dynamic dims: one engine runs every shape
    inside them. Without a profile, a model with dynamic inputs is built on its first run() for the shapes fed,
    and again for each new combination of shapes (the last few engines are kept). providers: ONNX Runtime's
    list, for scripts moving over: the first of "CUDAExecutionProvider" / "TensorrtExecutionProvider" (device
    "cuda") and "CPUExecutionProvider" (device "cpu") picks the device; give device or providers, not both.
    Other keyword arguments go to kiln.Builder (threads, timing_cache, allow_host_fallback, plugins, progress, ...).
    """

    def __init__(self, path_or_bytes: ModelSource, device: Optional[str] = None, precision: str = "fp32",
                 profile: Optional[Any] = None, providers: Optional[Sequence[Any]] = None,
                 **builder_options: Any) -> None:
        device = _device_for(device, providers)
        profiles: Optional[List[Profile]] = None
        if profile is not None:
            profiles = [profile] if isinstance(profile, Mapping) else list(profile)
        self._builder = Builder(device, precision, profiles=profiles, **builder_options)
        self._model = load_model(path_or_bytes)
        self._inputs = [NodeArg(*i) for i in self._model.inputs()]
        self._outputs = [NodeArg(*o) for o in self._model.outputs()]
        self._device = device
        self._lock = threading.Lock()
        self._engines: "OrderedDict[Tuple, Tuple[Engine, Any]]" = OrderedDict()
        self._static = profiles is not None or all(_is_static(i.shape) for i in self._inputs)
        if self._static:
            engine, _ = self._add_engine((), self._builder.build_model(self._model))
            if profiles is None:
                # Output dims a file declares as symbols but inference makes concrete are reported as numbers,
                # as ONNX Runtime reports them.
                self._outputs = engine.get_outputs()

    def get_inputs(self) -> List[NodeArg]:
        return list(self._inputs)

    def get_outputs(self) -> List[NodeArg]:
        return list(self._outputs)

    def get_providers(self) -> List[str]:
        return ["CUDAExecutionProvider" if self._device == "cuda" else "CPUExecutionProvider"]

    @property
    def engine(self) -> Engine:
        """The engine of the last run (or the only one)."""
        if not self._engines:
            raise Error("no engine yet: this model has dynamic inputs and has not run")
        return next(reversed(self._engines.values()))[0]

    def run(self, output_names: Optional[Sequence[str]], input_feed: Mapping[str, Any], run_options: Any = None,
            *, output_device: Optional[str] = None) -> List[Any]:
        """Returns the outputs named in `output_names` (all, in the model's order, for None) as numpy arrays.

        Inputs: numpy arrays, lists, or DLPack tensors; CPU ones are read in place, and on a cuda session a CUDA
        torch tensor (on cuda:0) is copied device-to-device on torch's current stream, never through the host.
        output_device="cuda" (cuda sessions; torch needed) returns new torch CUDA tensors on cuda:0 instead,
        filled device-to-device on torch's current stream without a host copy (ONNX Runtime's io_binding use).
        """
        known = {i.name for i in self._inputs}
        for name in input_feed:
            if name not in known:
                raise Error(f"no input '{name}'; the model's inputs are: {', '.join(sorted(known)) or '(none)'}")
        missing = [i.name for i in self._inputs if i.name not in input_feed]
        if missing:
            raise Error(f"missing input(s): {', '.join(missing)}")
        names = [o.name for o in self._outputs] if output_names is None else list(output_names)
        outputs = {o.name for o in self._outputs}
        for n in names:
            if n not in outputs:
                raise Error(f"no output '{n}'; the model's outputs are: {', '.join(sorted(outputs))}")
        on_device = _convert.check_output_device(output_device, self._device)
        device_memory = self._device == "cuda"
        feed = {name: _convert.input_array(name, value, device_memory) for name, value in input_feed.items()}
        with self._lock:
            engine, context = self._engine_for(feed)
            for name, value in feed.items():
                _convert.set_input(context, name, value, device_memory)
            if device_memory:
                context.set_data_transfers(not on_device)  # off: outputs stay on the device
            context.run()
            types = {o.name: o.type for o in engine.get_outputs()}
            return _convert.outputs(context, names, [types[n] for n in names], on_device)

    def profile(self, input_feed: Mapping[str, Any], runs: int = 1) -> Dict[str, float]:
        """Per-layer mean milliseconds {layer name: ms} over `runs` runs."""
        feed = {name: _convert.host_array(name, value) for name, value in input_feed.items()}
        with self._lock:
            engine, _ = self._engine_for(feed)
        return engine.create_context().profile(feed, runs)

    def _engine_for(self, feed: Mapping[str, Any]) -> Tuple[Engine, Any]:
        key: Tuple = () if self._static else tuple((n, tuple(int(d) for d in np.shape(feed[n]))) for n in sorted(feed))
        hit = self._engines.get(key)
        if hit is not None:
            self._engines.move_to_end(key)
            return hit
        engine = self._builder.build_model(self._model, input_shapes=dict(key))
        return self._add_engine(key, engine)

    def _add_engine(self, key: Tuple, engine: Engine) -> Tuple[Engine, Any]:
        entry = (engine, engine.create_context()._native)
        self._engines[key] = entry
        while len(self._engines) > _MAX_SHAPE_ENGINES:
            self._engines.popitem(last=False)
        return entry


_PROVIDER_DEVICES = {"CUDAExecutionProvider": "cuda", "TensorrtExecutionProvider": "cuda",
                     "CPUExecutionProvider": "cpu"}


def _device_for(device: Optional[str], providers: Optional[Sequence[Any]]) -> str:
    if providers is None:
        return device or "cpu"
    if device is not None:
        raise Error("give device= or providers=, not both")
    # ONNX Runtime takes names or (name, options) pairs, in order of preference.
    names = [p[0] if isinstance(p, (tuple, list)) else p for p in providers]
    for name in names:
        if name in _PROVIDER_DEVICES:
            return _PROVIDER_DEVICES[name]
    raise Error(f"none of the providers {names} maps to a kiln device (known: {', '.join(_PROVIDER_DEVICES)})")


def _is_static(shape: Optional[Iterable[Any]]) -> bool:
    return shape is not None and all(isinstance(d, int) for d in shape)
