"""Peak memory of ``dedup.candidates`` against the number of documents, this tree vs an older revision.

Synthetic signature files (50k-row shards, 2% of documents sharing a key) at each size; each run is a
fresh child process and reads its own VmHWM, so the figures are exact peaks, not samples. The slope
between sizes is the bytes a document costs. Writes ``bench/results/dedup_memory.json``.

    .venv/bin/python bench/dedup_memory.py --sizes 500000 2000000 --compare fae9eef
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import importlib.util, os, sys
src, folder, out = sys.argv[1:4]
if src == "tree":
    from vocab_expansion.corpus import dedup as m
else:
    spec = importlib.util.spec_from_file_location("dedup_rev", src)
    m = importlib.util.module_from_spec(spec); sys.modules["dedup_rev"] = m; spec.loader.exec_module(m)
hwm = lambda: int([x for x in open("/proc/self/status") if x.startswith("VmHWM")][0].split()[1]) / 1024
base = hwm()
m.candidates(sorted(os.path.join(folder, p) for p in os.listdir(folder)), [0], out, True)
print(base, hwm())
"""


def make_shards(folder: Path, docs: int, shard: int = 50_000) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(docs // shard):
        keys = rng.integers(0, 2**63, shard, dtype=np.uint64)
        keys[::50] = keys[1::50]  # 2% of documents share a key with a neighbour
        pq.write_table(pa.table({"row": np.arange(shard, dtype=np.int32), "band_000": keys, "exact": keys}),
                       folder / f"s{i:04d}.parquet")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[500_000, 2_000_000])
    ap.add_argument("--compare", default="fae9eef", help="git revision whose dedup.py to measure alongside")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "dedup_rev.py"
        old.write_text(subprocess.run(["git", "show", f"{a.compare}:src/vocab_expansion/corpus/dedup.py"],
                                      cwd=ROOT, check=True, capture_output=True, text=True).stdout)
        rows: dict[str, dict[str, float]] = {"tree": {}, a.compare: {}}
        outs: dict[str, bytes] = {}
        for n in a.sizes:
            make_shards(Path(tmp) / str(n), n)
            for name, src in (("tree", "tree"), (a.compare, str(old))):
                out = Path(tmp) / f"{name}-{n}.parquet"
                done = subprocess.run([sys.executable, "-c", CHILD, src, str(Path(tmp) / str(n)), str(out)],
                                      check=True, capture_output=True, text=True)
                rows[name][str(n)] = float(done.stdout.split()[-1])
                outs[name] = out.read_bytes()
            assert outs["tree"] == outs[a.compare], "the two revisions wrote different candidates"
    lo, hi = str(min(a.sizes)), str(max(a.sizes))
    result = {
        "what": "peak RSS (MiB, VmHWM) of dedup.candidates on one band + the exact hash, synthetic signatures",
        "command": "python bench/dedup_memory.py " + " ".join(sys.argv[1:]),
        "peak_mib": rows,
        "bytes_per_document": {k: round((v[hi] - v[lo]) * 2**20 / (int(hi) - int(lo)), 1) for k, v in rows.items()},
        "identical_output": True,
    }
    out = ROOT / "bench" / "results" / "dedup_memory.json"
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
