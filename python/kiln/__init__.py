"""kiln: an ONNX optimizer and runtime (TensorRT-like), from Python.

    import numpy as np, kiln
    sess = kiln.InferenceSession("model.onnx", device="cpu", precision="fp32")
    (y,) = sess.run(None, {sess.get_inputs()[0].name: np.zeros((1, 3, 224, 224), np.float32)})

`InferenceSession` has ONNX Runtime's calls; `Builder`/`Engine` are the TensorRT-style API (build options, engine
files, per-layer profiles). Errors are `kiln.Error` (a RuntimeError) carrying kiln's one-line message. The build
log goes to the `logging` logger "kiln" (INFO); a progress line is drawn on stderr while building when stderr is
a terminal. `python -m kiln` runs the bundled `kiln` command-line tool.
"""
from ._kiln import Error, __version__, load_plugin_library, plugin_names  # noqa: F401
from ._builder import Builder, Context, Engine
from ._session import InferenceSession, NodeArg

__all__ = [
    "Builder",
    "Context",
    "Engine",
    "Error",
    "InferenceSession",
    "NodeArg",
    "__version__",
    "load_plugin_library",
    "plugin_names",
]
