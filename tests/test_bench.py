"""The GPU benchmark's code path, on a tiny configuration on the CPU (the real run needs one GPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import ROOT


def test_gpu_bench_runs_tiny_on_cpu(tmp_path):
    out = tmp_path / "gpu.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    subprocess.run([sys.executable, str(ROOT / "bench" / "gpu.py"), "--device", "cpu", "--tiny", "--out", str(out)],
                   check=True, env=env, capture_output=True, timeout=600)
    result = json.loads(out.read_text())
    assert result["goals"], result


def test_output_checksums_tell_timings_from_changes(tmp_path):
    """bench/output_checksums.py: a file differing only in a timed field is 'equal but timings', any other
    change 'differ' (the tool that shows a refactor left the demo's outputs as they were)."""
    runs = {}
    for name, speed, score in (("a", 10.0, 0.5), ("b", 99.0, 0.5), ("c", 10.0, 0.6)):
        root = tmp_path / name
        (root / "eval").mkdir(parents=True)
        (root / "eval" / "generation.json").write_text(json.dumps({"tokens_per_second": speed, "new": 3}))
        (root / "eval" / "score.json").write_text(json.dumps({"acc": score}))
        (root / "t.csv").write_text(f"model,Generation ko chars/s,acc\nx,{speed},{score}\n")
        (root / "t.md").write_text(f"| model | Generation ko chars/s | acc |\n|:--|--:|--:|\n"
                                   f"| x | {speed} | {score} |\n")
        runs[name] = tmp_path / f"{name}.json"
        subprocess.run([sys.executable, str(ROOT / "bench" / "output_checksums.py"), "write", str(root),
                        str(runs[name])], check=True, timeout=60)
    compare = [sys.executable, str(ROOT / "bench" / "output_checksums.py"), "compare"]
    same = subprocess.run([*compare, str(runs["a"]), str(runs["b"])], capture_output=True, text=True, timeout=60)
    assert same.returncode == 0 and "differ: 0" in same.stdout, same.stdout
    assert "equal_but_timings: eval/generation.json" in same.stdout and "equal_but_timings: t.md" in same.stdout
    changed = subprocess.run([*compare, str(runs["a"]), str(runs["c"])], capture_output=True, text=True, timeout=60)
    assert changed.returncode == 1 and "differ: eval/score.json" in changed.stdout, changed.stdout
    assert "differ: t.csv" in changed.stdout and "differ: t.md" in changed.stdout
