"""Benchmark of the QLoRA merge's memory: peak RSS of ``merged_state_dict`` against one bf16 copy of the model.

A random Llama (12 layers x 768, 32,000 + 9,000 vocabulary, untied lm_head: 176M parameters) is saved as a bf16
checkpoint, loaded the way a QLoRA stage loads it (``methods.load_stage_model``: NF4 linear layers, LoRA r=8 on every
projection, stage 6's groups ``[lora, embed_new, head_all]``, precision bf16) with its adapters moved off zero,
and merged into a bf16 state dict, in a fresh subprocess per merge (``dequantized`` and ``original``). The
peak is the process's high-water mark during the merge alone: freed memory is handed back (``malloc_trim``)
and ``VmHWM`` reset (``/proc/self/clear_refs``) just before it, and the figure is that peak minus the resident
size before it (the loaded 4-bit model). The goal: at most 1.3x one bf16 copy (the result itself is one copy).
``RssAnon`` and ``RssFile`` are also polled during the merge (every millisecond, so a peak may be missed by a
little): ``RssFile`` growth is resident checkpoint pages, which the ``original`` merge maps to read, and
``anon_peak_vs_bf16_copy`` leaves them out.

The peak varies a little from run to run (the allocator), so each merge runs ``--repeats`` times and the worst
run is the figure; one more run with glibc's ``MALLOC_MMAP_THRESHOLD_`` pinned (freed temporaries go straight
back to the OS) shows the merge's live memory alone.

Figures go to bench/results/qlora_merge.json. Not a test:

    .venv/bin/python bench/qlora_merge.py [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import torch  # noqa: E402

CONFIG = {"old": 32000, "new": 9000, "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
          "intermediate_size": 3072}
GOAL = 1.3
MIB = 2**20


def _status(key: str) -> int:
    """A /proc/self/status figure in bytes (VmRSS, VmHWM, RssFile, ...)."""
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"^{key}:\s+(\d+) kB", text, re.MULTILINE).group(1)) * 1024


class _Sampler:
    """The largest ``RssAnon`` and ``RssFile`` seen, polled from a thread every millisecond."""

    def __init__(self) -> None:
        import threading

        self.peak = {"RssAnon": 0, "RssFile": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for key in self.peak:
                self.peak[key] = max(self.peak[key], _status(key))
            time.sleep(0.001)

    def __enter__(self) -> _Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _build(folder: Path) -> int:
    """Save the random model (bf16 safetensors, ``expansion.json``); returns its parameter count."""
    from transformers import LlamaConfig, LlamaForCausalLM

    c = dict(CONFIG)
    old, new = c.pop("old"), c.pop("new")
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=old + new, num_key_value_heads=c["num_attention_heads"], tie_word_embeddings=False,
                      max_position_embeddings=256, **c)
    model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    model.save_pretrained(folder)
    (folder / "expansion.json").write_text(json.dumps({"old_vocab": old}))
    return sum(p.numel() for p in model.parameters())


def child(model_dir: str, onto: str) -> dict:
    """Load the model as a QLoRA stage does, then merge it, measuring the merge's peak RSS."""
    import ctypes
    import gc

    from vocab_expansion.training.methods import load_stage_model
    from vocab_expansion.training.qlora import merged_state_dict
    from vocab_expansion.training.stages import StageSpec

    spec = StageSpec.from_config("stage6_qlora", {"train": ["lora", "embed_new", "head_all"], "method": "qlora",
                                                  "precision": "bf16", "lora": {"r": 8, "alpha": 16}})
    t0 = time.perf_counter()
    sm = load_stage_model(model_dir, spec, torch.device("cpu"))
    load_s = time.perf_counter() - t0
    with torch.no_grad():
        for name, p in sm.model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.01)
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand memory freed while loading back, so the baseline is live memory
    before, anon_before, file_before = _status("VmRSS"), _status("RssAnon"), _status("RssFile")
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    with _Sampler() as sampled:
        t0 = time.perf_counter()
        state = merged_state_dict(sm.model, model_dir, sm.embedding_split, onto=onto, dtype=torch.bfloat16)
        merge_s = time.perf_counter() - t0
    peak = _status("VmHWM")
    return {"onto": onto, "rss_before_merge_mib": round(before / MIB, 1), "peak_rss_mib": round(peak / MIB, 1),
            "merge_peak_mib": round((peak - before) / MIB, 1),
            "sampled_anon_peak_mib": round((sampled.peak["RssAnon"] - anon_before) / MIB, 1),
            "sampled_file_peak_mib": round((sampled.peak["RssFile"] - file_before) / MIB, 1),
            "result_mib": round(sum(t.numel() * t.element_size() for t in state.values()) / MIB, 1),
            "tensors": len(state), "load_s": round(load_s, 2), "merge_s": round(merge_s, 2)}


def _run_child(model_dir: Path, onto: str, threads: int, bf16_mib: float, env: dict[str, str] | None = None) -> dict:
    import os

    out = subprocess.run([sys.executable, __file__, "--threads", str(threads), "--child", str(model_dir), onto],
                         check=True, capture_output=True, text=True, env={**os.environ, **(env or {})}).stdout
    run = json.loads(out.strip().splitlines()[-1])
    run["peak_vs_bf16_copy"] = round(run["merge_peak_mib"] / bf16_mib, 3)
    run["anon_peak_vs_bf16_copy"] = round(run["sampled_anon_peak_mib"] / bf16_mib, 3)
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3, help="fresh processes per merge (the peak varies run to run)")
    ap.add_argument("--child", nargs=2, metavar=("MODEL_DIR", "ONTO"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.child:
        print(json.dumps(child(*args.child)))
        return
    merges = {}
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "base"
        n_params = _build(model_dir)
        bf16_mib = n_params * 2 / MIB
        for onto in ("dequantized", "original"):
            runs = [_run_child(model_dir, onto, args.threads, bf16_mib) for _ in range(args.repeats)]
            # glibc's mmap threshold pinned: freed temporaries go back to the OS, so the peak is live memory only
            pinned = _run_child(model_dir, onto, args.threads, bf16_mib, {"MALLOC_MMAP_THRESHOLD_": "131072"})
            ratios = sorted(r["peak_vs_bf16_copy"] for r in runs)
            merges[onto] = {"worst_peak_vs_bf16_copy": ratios[-1], "median_peak_vs_bf16_copy": ratios[len(ratios) // 2],
                            "meets_goal": ratios[-1] <= GOAL,
                            "live_peak_vs_bf16_copy": pinned["peak_vs_bf16_copy"], "runs": runs,
                            "run_with_mmap_threshold_pinned": pinned}
    result = {"config": CONFIG, "parameters": n_params, "bf16_copy_mib": round(bf16_mib, 1), "goal": GOAL,
              "merges": merges, "threads": args.threads, "torch": torch.__version__, "machine": platform.machine(),
              "python": platform.python_version()}
    out_path = ROOT / "bench" / "results" / "qlora_merge.json"
    out_path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    for onto, m in merges.items():
        peaks = ", ".join(f"{r['merge_peak_mib']:.0f}" for r in m["runs"])
        print(f"{onto:>11}: merge peak {peaks} MiB in {len(m['runs'])} runs: worst {m['worst_peak_vs_bf16_copy']:.2f}x "
              f"one bf16 copy ({bf16_mib:.0f} MiB; goal <= {GOAL}x); live memory (mmap threshold pinned) "
              f"{m['live_peak_vs_bf16_copy']:.2f}x")


if __name__ == "__main__":
    main()
