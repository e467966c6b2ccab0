"""The model suite (tests/models/suite.py): every model kiln runs on the CPU matches ONNX Runtime per output.

The files come from PyPI wheels and our own torch exports via scripts/fetch_models.sh (scripts/setup.sh runs it; a
missing torch export is made on demand); slow entries run only with `pytest --all-models` (and in
bench/bench_models_cpu.py).
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models"))
import runner  # noqa: E402
import suite  # noqa: E402

pytest.importorskip("onnxruntime")
if not os.path.exists(runner.KILN):
    pytest.skip(f"{runner.KILN} not built", allow_module_level=True)


@pytest.mark.parametrize("m", suite.MODELS, ids=[suite.case_id(m) for m in suite.MODELS])
def test_model_matches_onnxruntime(m, request):
    if m["slow"] and not request.config.getoption("--all-models"):
        pytest.skip("slow: run with --all-models")
    assert os.path.exists(runner.ensure_model(m)), f"{runner.model_path(m)} missing: run scripts/fetch_models.sh"
    errors, _, _ = runner.run_case(m)
    assert errors, "ONNX Runtime gave no outputs"
    for name, err in errors.items():
        assert err <= m["tol"], f"output {name}: rel L2 {err:.3e} > {m['tol']:g} vs ONNX Runtime ({m['note']})"
