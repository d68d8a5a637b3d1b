"""Peak memory of the global data steps against the number of documents, this tree vs an older revision.

The three steps that read every shard: ``dedup.candidates`` (one band + the exact hash), ``dedup.clusters``
(a tenth of the documents in a candidate pair) and the pack step's index (``pack.write_packed``: 2% validation,
oversampling, English replay, BOS). Each runs on synthetic inputs of 50k-document shards at every size, in a
fresh child process that reads its own VmHWM, so the figures are exact peaks, not samples; the slope between
the smallest and the largest size is the bytes a document costs. Both revisions must write the same output
(asserted). Writes ``bench/results/global_memory.json``.

    .venv/bin/python bench/global_memory.py --sizes 500000 2000000 --compare 3eb7421
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARD = 50_000
NUM_PERM = 120
FILES = {"dedup": "src/vocab_expansion/corpus/dedup.py", "pack": "src/vocab_expansion/training/pack.py"}

CHILD = r"""
import importlib.util, os, sys
kind, src, folder, out = sys.argv[1:5]
if src == "tree":
    from vocab_expansion.corpus import dedup
    from vocab_expansion.training import pack
else:
    spec = importlib.util.spec_from_file_location("rev", src)
    m = importlib.util.module_from_spec(spec); sys.modules["rev"] = m; spec.loader.exec_module(m)
    dedup = pack = m
import numpy as np, pyarrow.parquet  # imported before the baseline
hwm = lambda: int([x for x in open("/proc/self/status") if x.startswith("VmHWM")][0].split()[1]) / 1024
sig = sorted(os.path.join(folder, "sig", p) for p in os.listdir(os.path.join(folder, "sig")))
# the dedup config is built before the baseline: reading the schema is not the step's memory
dcfg = dedup.DedupConfig.from_config({}, 0) if kind in ("candidates", "clusters") else None
base = hwm()
if kind == "candidates":  # the tree with the configured default number of key ranges
    dedup.candidates(sig, [0], out, True, *([dcfg.key_ranges] if src == "tree" else []))
elif kind == "clusters":
    dedup.clusters(sig, [os.path.join(folder, "candidates.parquet")], out, out + ".json", dcfg)
else:
    tokens = os.path.join(folder, "tokens")
    shards = sorted({os.path.join(tokens, p.split(".")[0]) for p in os.listdir(tokens)})
    cfg = pack.PackConfig(seq_len=512, val_fraction=0.02, oversample=1, dense_share=0.3, english_replay=0.1, seed=0)
    pack.write_packed(out, [s for s in shards if "english" not in s], [s for s in shards if "english" in s], cfg,
                      2, 1, 30000, decode=lambda rows: ["x" * len(r) for r in rows])
print(base, hwm())
"""


def make_inputs(folder: Path, docs: int) -> None:
    """Signature shards (band 0 and exact keys with 2% shared keys, full signatures), candidate pairs over a
    tenth of the documents, and token files (uint16 ids, 8-120 tokens a document) plus a fixed English part."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from vocab_expansion.training.tokens import DOC_DTYPE

    rng = np.random.default_rng(0)
    for sub in ("sig", "tokens"):
        (folder / sub).mkdir(parents=True)
    pairs = []
    for i in range(docs // SHARD):
        keys = rng.integers(0, 2**63, SHARD, dtype=np.uint64)
        keys[::50] = keys[1::50]  # 2% of documents share a key with a neighbour
        sig = rng.integers(0, 2**32, (SHARD, NUM_PERM), dtype=np.uint32)
        a = np.arange(0, SHARD, 20)
        sig[a + 1, : NUM_PERM * 4 // 5] = sig[a, : NUM_PERM * 4 // 5]  # a tenth in pairs of J ~ 0.8
        pairs.append(np.stack([(i << 32) | a, (i << 32) | (a + 1)], axis=1))
        pq.write_table(pa.table({
            "row": np.arange(SHARD, dtype=np.int32), "id": [f"s{i}:{r}" for r in range(SHARD)],
            "chars": rng.integers(10, 500, SHARD, dtype=np.int32), "exact": keys,
            "sig": pa.FixedSizeListArray.from_arrays(pa.array(sig.reshape(-1)), NUM_PERM), "band_000": keys,
        }), folder / "sig" / f"s{i:04d}.parquet")
        _token_shard(folder / "tokens" / f"s{i:04d}", SHARD, rng, DOC_DTYPE)
    _token_shard(folder / "tokens" / "english", 100_000, rng, DOC_DTYPE)
    p = np.concatenate(pairs)
    pq.write_table(pa.table({"a": p[:, 0], "b": p[:, 1]}), folder / "candidates.parquet")


def _token_shard(prefix: Path, n: int, rng: np.random.Generator, doc_dtype: np.dtype) -> None:
    table = np.zeros(n, dtype=doc_dtype)
    table["length"] = rng.integers(8, 120, n)
    table["new"] = (table["length"] * rng.random(n)).astype(np.uint32)
    table["key"] = rng.integers(0, 2**63, n, dtype=np.uint64)
    np.save(f"{prefix}.docs.npy", table)
    np.save(f"{prefix}.tokens.npy", rng.integers(3, 32000, int(table["length"].sum()), dtype=np.uint16))


def _digest(path: Path) -> str:
    files = sorted(p for p in path.iterdir() if p.name != "sources.json") if path.is_dir() else [path]
    return hashlib.sha256(b"".join(p.read_bytes() for p in files)).hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[500_000, 2_000_000])
    ap.add_argument("--compare", default="3eb7421", help="git revision whose dedup.py and pack.py to measure alongside")
    ap.add_argument("--steps", nargs="+", default=["candidates", "clusters", "pack"])
    a = ap.parse_args()
    peaks: dict[str, dict[str, dict[str, float]]] = {s: {"tree": {}, a.compare: {}} for s in a.steps}
    with tempfile.TemporaryDirectory() as tmp:
        old = {}
        for kind, path in FILES.items():
            old[kind] = Path(tmp) / f"{kind}_rev.py"
            old[kind].write_text(subprocess.run(["git", "show", f"{a.compare}:{path}"], cwd=ROOT, check=True,
                                                capture_output=True, text=True).stdout)
        for n in a.sizes:
            folder = Path(tmp) / str(n)
            make_inputs(folder, n)
            for step in a.steps:
                digests = {}
                for name in ("tree", a.compare):
                    src = "tree" if name == "tree" else str(old["pack" if step == "pack" else "dedup"])
                    out = folder / f"{step}-{name}" if step == "pack" else folder / f"{step}-{name}.parquet"
                    done = subprocess.run([sys.executable, "-c", CHILD, step, src, str(folder), str(out)],
                                          check=True, capture_output=True, text=True)
                    peaks[step][name][str(n)] = float(done.stdout.split()[-1])
                    digests[name] = _digest(out)
                assert digests["tree"] == digests[a.compare], f"{step}: the two revisions wrote different output"
                print(step, n, {k: v[str(n)] for k, v in peaks[step].items()}, flush=True)
    lo, hi = str(min(a.sizes)), str(max(a.sizes))
    result = {
        "what": "peak RSS (MiB, VmHWM) of the global data steps on synthetic inputs, this tree vs an older revision",
        "command": "python bench/global_memory.py " + " ".join(sys.argv[1:]),
        "inputs": {"shard_documents": SHARD, "candidates": "band 0 + exact hash, 2% of documents share a key",
                   "clusters": "a tenth of the documents in a candidate pair (estimated J ~ 0.8), 120 permutations",
                   "pack": "8-120 uint16 ids a document, 2% validation, oversample 1 at dense_share 0.3, "
                           "10% English replay from 100k documents, seq_len 512, BOS"},
        "peak_mib": peaks,
        "bytes_per_document": {s: {k: round((v[hi] - v[lo]) * 2**20 / (int(hi) - int(lo)), 1) for k, v in r.items()}
                               for s, r in peaks.items()},
        "identical_output": True,
    }
    out = ROOT / "bench" / "results" / "global_memory.json"
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
