"""Summarizes a `kiln exec --exportProfile` JSON: time per op/kernel and the slowest layers."""
import collections
import json
import sys

layers = json.load(open(sys.argv[1]))
total = sum(l["averageMs"] for l in layers)
print(f"== {sys.argv[1]}: {total:.3f} ms summed over {len(layers)} layers")
by = collections.defaultdict(lambda: [0.0, 0])
for l in layers:
    key = f'{l["op"]} [{l["kernel"]}]'
    by[key][0] += l["averageMs"]
    by[key][1] += 1
for key, (ms, n) in sorted(by.items(), key=lambda kv: -kv[1][0]):
    print(f"  {ms:8.3f} ms {100 * ms / total:5.1f}%  {n:4d}x  {key}")
print("  slowest layers:")
for l in sorted(layers, key=lambda l: -l["averageMs"])[:15]:
    print(f'  {l["averageMs"]:8.4f} ms  {l["op"]:16s} {l["kernel"]:20s} {l.get("tactic", ""):28s} {l["name"]}')
