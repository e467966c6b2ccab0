"""The installed kiln package (and onnx, onnxruntime) for the tests that drive it: a test module doing
`from installed_kiln import kiln, onnx, ort, IR` is skipped when one is missing. scripts/test.sh checks that the
package imports before pytest runs, so in CI these tests cannot skip silently."""
import pytest

kiln = pytest.importorskip("kiln", reason="the kiln Python package is not installed (scripts/build_python.sh)")
if not hasattr(kiln, "InferenceSession"):
    pytest.skip("an unbuilt kiln folder shadows the package", allow_module_level=True)
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

# The IR version test models declare: what every ONNX Runtime the tests meet reads (the GPU machine's onnx 1.23
# would write 14, which its ONNX Runtime 1.30 refuses).
IR = 10
