"""Every ```python block of README.md, docs/python.md and docs/python_gs.md runs, so the examples cannot rot.

Each block runs on its own (fresh globals) in a temporary folder holding the files the docs assume: model.onnx
(input "input", float32 [1, 3, 224, 224] -> Conv -> Relu -> GlobalAveragePool -> "output" [1, 8, 1, 1]) and
model_dyn.onnx (the same with batch dim "N"). A block meant as an illustration only (none today) may be preceded
by the line `<!-- doc-test: skip (why) -->`.
"""
import os
import pathlib
import re

import numpy as np
import pytest

from installed_kiln import kiln, onnx  # noqa: E402  (skips this module without them)
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCS = ["README.md", "docs/python.md", "docs/python_gs.md"]
_BLOCK = re.compile(r"(?P<skip><!-- doc-test: skip[^>]*-->\s*\n)?```python\n(?P<code>.*?)```", re.S)


def blocks():
    found = []
    for doc in DOCS:
        text = (ROOT / doc).read_text()
        for k, match in enumerate(_BLOCK.finditer(text)):
            line = text.count("\n", 0, match.start("code")) + 1
            marks = [pytest.mark.skip(reason="marked doc-test: skip")] if match.group("skip") else []
            found.append(pytest.param(doc, line, match.group("code"), id=f"{doc}:{line}", marks=marks))
    return found


def conv_model(batch):
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32) * 0.1, "w")
    b = numpy_helper.from_array(rng.standard_normal(8).astype(np.float32), "b")
    nodes = [helper.make_node("Conv", ["input", "w", "b"], ["c"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("GlobalAveragePool", ["r"], ["output"], name="pool")]
    graph = helper.make_graph(nodes, "docs", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                                            [batch, 3, 224, 224])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [batch, 8, 1, 1])], [w, b])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


@pytest.fixture
def docs_folder(tmp_path, monkeypatch):
    onnx.save(conv_model(1), str(tmp_path / "model.onnx"))
    onnx.save(conv_model("N"), str(tmp_path / "model_dyn.onnx"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_docs_have_python_examples():
    counts = {doc: sum(1 for p in blocks() if p.values[0] == doc) for doc in DOCS}
    assert all(counts.values()), f"a document without a python example: {counts}"


@pytest.mark.parametrize("doc, line, code", blocks())
def test_doc_example_runs(doc, line, code, docs_folder):
    compiled = compile("\n" * (line - 1) + code, doc, "exec")  # tracebacks give the document's own line numbers
    exec(compiled, {"__name__": f"doc_example_{os.path.basename(doc)}_{line}"})
