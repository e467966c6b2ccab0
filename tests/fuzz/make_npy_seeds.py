#!/usr/bin/env python3
"""Writes small .npy seeds for fuzz_tensor_io into DIR (each prefixed with the selector byte 0 = read_npy).

Pure Python (the format is simple), so the seed step needs no numpy: every dtype read_npy accepts, format
versions 1-3, scalars, empty and multi-dimensional shapes, and a few near-misses (big-endian, Fortran order)."""
import struct
import sys
from pathlib import Path

DTYPES = {"<f2": 2, "<f4": 4, "<f8": 8, "<c8": 8, "<c16": 16, "|i1": 1, "<i2": 2, "<i4": 4, "<i8": 8,
          "|u1": 1, "<u2": 2, "<u4": 4, "<u8": 8, "|b1": 1}
SHAPES = [(), (0,), (3,), (2, 3), (1, 2, 1, 2), (2, 0, 3)]


def npy(descr, shape, version=1, fortran=False):
    shape_text = "(" + "".join(f"{d}, " for d in shape)[:-2] + ("," if len(shape) == 1 else "") + ")"
    header = f"{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape_text}, }}"
    fixed = 10 if version == 1 else 12
    header += " " * ((64 - (fixed + len(header) + 1) % 64) % 64) + "\n"
    length = struct.pack("<H", len(header)) if version == 1 else struct.pack("<I", len(header))
    count = 1
    for d in shape:
        count *= d
    size = DTYPES.get(descr.replace(">", "<"), 4)
    payload = bytes((i * 37 + 11) % 256 for i in range(count * size))
    if descr.endswith("b1"):
        payload = bytes(b & 1 for b in payload)
    enc = "utf-8" if version == 3 else "latin-1"
    return b"\x93NUMPY" + bytes([version, 0]) + length + header.encode(enc) + payload


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for descr in DTYPES:
        for i, shape in enumerate(SHAPES):
            files[f"{descr[1:]}_{i}"] = npy(descr, shape)
    files["v2"] = npy("<f4", (2, 2), version=2)
    files["v3"] = npy("<f4", (2, 2), version=3)
    files["big_endian"] = npy(">f4", (2,))
    files["fortran"] = npy("<f4", (2, 3), fortran=True)
    for name, data in files.items():
        (out / f"npy_{name}.npy").write_bytes(b"\x00" + data)


if __name__ == "__main__":
    main()
