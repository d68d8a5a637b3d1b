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
