"""kiln.gs: an onnx_graphsurgeon-compatible graph API (written separately; this placeholder keeps the package whole)."""
