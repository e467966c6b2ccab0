"""The exception kiln.gs raises where onnx_graphsurgeon raises its own."""


class OnnxGraphSurgeonException(Exception):
    """Raised for invalid graph operations (same name as onnx_graphsurgeon's, for drop-in use)."""
