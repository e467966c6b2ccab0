#!/usr/bin/env python3
"""Checks that includes point one way (ARCHITECTURE.md, "Layers").

Every quoted #include in src/, include/kiln and tools/ is mapped to the layer that owns the included file; a
file may include only its own layer and the layers listed below it. Prints each violation as
`file:line: layer 'a' includes 'path' (layer 'b')` and exits 1 when there is any.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent

# What each layer may include besides itself. A DAG: backends sit beside builder and runtime and reach
# them only through the device contract's registries.
ALLOWED = {
    "ir": set(),
    "onnx": {"ir"},
    "ops": {"ir"},
    "passes": {"ir", "ops"},
    "device": {"ir", "ops", "passes"},
    "builder": {"ir", "ops", "passes", "device"},
    "runtime": {"ir", "onnx", "ops", "passes", "device", "builder"},
    "backends/cpu": {"ir", "ops", "device"},
    "backends/cuda": {"ir", "ops", "device"},
    "plugins": {"ir", "ops", "device", "backends/cpu", "backends/cuda"},
    "tools": {"ir", "onnx", "passes", "device", "runtime", "plugins"},  # and only through public headers
    "python": {"ir", "onnx", "passes", "device", "runtime", "plugins"},  # the bindings: public headers only
}

# Public headers belong to the layer that implements them. kiln/plugin.h is the plugin interface (abstract
# classes the backends call); its registry is implemented in plugins and reached by the runtime only
# through op and kernel registrations.
PUBLIC = {
    "kiln/error.h": "ir",
    "kiln/graph.h": "ir",
    "kiln/tensor_data.h": "ir",
    "kiln/stats.h": "ir",
    "kiln/onnx.h": "onnx",
    "kiln/passes.h": "passes",
    "kiln/build_options.h": "device",
    "kiln/plugin.h": "device",
    "kiln/engine.h": "runtime",
    "kiln/tensor_io.h": "runtime",
}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def layer_of_source(path: pathlib.Path) -> str:
    rel = path.relative_to(ROOT).as_posix()
    if rel.startswith("include/kiln/"):
        return PUBLIC.get(rel[len("include/"):], "?")
    if rel.startswith("tools/"):
        return "tools"
    if rel.startswith("python/"):
        return "python"
    parts = rel.split("/")
    if parts[1] == "backends":
        return "backends/" + parts[2]
    return parts[1]


def layer_of_include(inc: str, includer: pathlib.Path):
    if inc in PUBLIC:
        return PUBLIC[inc]
    if inc.startswith("kiln/"):
        return None  # an unknown public header: reported below
    if "/" not in inc:  # a sibling ("proto_util.h")
        return layer_of_source(includer)
    if inc.startswith("backends/"):
        return "/".join(inc.split("/")[:2])
    return inc.split("/")[0]


def main() -> int:
    files = [p for d in ("src", "include/kiln", "tools", "python/src") for p in (ROOT / d).rglob("*")
             if p.suffix in {".h", ".cpp", ".cu", ".cuh"}]
    problems = []
    for f in sorted(files):
        me = layer_of_source(f)
        if me not in ALLOWED:
            problems.append(f"{f.relative_to(ROOT)}: not in any layer (add it to scripts/check_layers.py)")
            continue
        for n, line in enumerate(f.read_text(errors="replace").splitlines(), 1):
            m = INCLUDE.match(line)
            if not m:
                continue
            inc = m.group(1)
            other = layer_of_include(inc, f)
            where = f"{f.relative_to(ROOT)}:{n}"
            if other is None:
                problems.append(f"{where}: '{inc}' is a public header no layer owns (add it to PUBLIC)")
            elif me in ("tools", "python") and "/" in inc and not inc.startswith("kiln/"):
                problems.append(f"{where}: {me} use the public API only, not '{inc}'")
            elif other != me and other not in ALLOWED[me]:
                problems.append(f"{where}: layer '{me}' includes '{inc}' (layer '{other}')")
    for p in problems:
        print(p)
    print(f"check_layers: {len(files)} files, {len(problems)} violations")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
