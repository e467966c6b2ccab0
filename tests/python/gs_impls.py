"""The two implementations every kiln.gs test runs against: kiln.gs and onnx_graphsurgeon."""

import importlib

import pytest

IMPLS = ["kiln.gs", "onnx_graphsurgeon"]


def load(name):
    try:
        return importlib.import_module(name)
    except ImportError as err:
        pytest.skip(f"{name} not importable: {err}")


@pytest.fixture(params=IMPLS)
def gs(request):
    """The module under test: ``kiln.gs`` or the original ``onnx_graphsurgeon``."""
    return load(request.param)


def is_kiln(gs):
    return gs.__name__.startswith("kiln")
