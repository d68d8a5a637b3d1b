"""Benchmark of row-level training: what a stage-1 or stage-2 step costs against a full fine-tuning step.

For two Llama configurations (the demo's, and 12 layers x 768 with a 32,000 + 9,000 vocabulary), each
mode freezes the model through the trainer's own code path (``set_trainable``: a row split for new rows)
and times AdamW steps (forward, backward, optimizer step) on the same random batch, in which 40% of
the ids are new tokens. Memory is counted from the tensors themselves: parameters (trainable and
frozen), gradients and optimizer state after a step. Modes:

* ``full``: every parameter trains (full fine-tuning),
* ``stage1``: the input rows of the new tokens only (EEVE stage 1),
* ``stage2``: the lm_head rows of the new tokens only (EEVE stage 2),
* ``stage5``: new input rows and every lm_head row.

Modes are timed interleaved (round robin, after a warm-up step each); the median step time is reported.
Figures go to bench/results/training.json. Not a test:

    .venv/bin/python bench/training.py [--threads 1] [--steps 5] [--configs demo large]
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import torch  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM  # noqa: E402

from vocab_expansion.training.stages import StageSpec  # noqa: E402
from vocab_expansion.training.trainable import set_trainable  # noqa: E402

CONFIGS = {
    "demo": {"old": 8000, "new": 6656, "hidden_size": 128, "num_hidden_layers": 4, "num_attention_heads": 4,
             "intermediate_size": 384, "batch": 16, "seq": 128},
    "large": {"old": 32000, "new": 9000, "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
              "intermediate_size": 3072, "batch": 4, "seq": 256},
}
MODES = {"full": ("all",), "stage1": ("embed_new",), "stage2": ("head_new",), "stage5": ("embed_new", "head_all")}


def _bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def _build(name: str) -> tuple[torch.nn.Module, torch.Tensor, int]:
    c = dict(CONFIGS[name])
    old, new, batch, seq = c.pop("old"), c.pop("new"), c.pop("batch"), c.pop("seq")
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=old + new, num_key_value_heads=c["num_attention_heads"], tie_word_embeddings=False,
                      max_position_embeddings=seq, **c)
    model = LlamaForCausalLM(cfg)
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(0, old, (batch, seq), generator=gen)
    is_new = torch.rand((batch, seq), generator=gen) < 0.4
    ids[is_new] = torch.randint(old, old + new, (int(is_new.sum()),), generator=gen)
    return model, ids, old


def bench_config(name: str, steps: int) -> dict:
    """Step times and memory of every mode on one configuration."""
    model, ids, n_old = _build(name)
    runs = {}
    for mode, groups in MODES.items():
        m = copy.deepcopy(model)
        split = set_trainable(m, StageSpec(name=mode, train=groups), {"old_vocab": n_old, "new_blocks": []})
        params = [p for p in m.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0, foreach=False)
        frozen_rows = [t for t in (split.embedding, split.head) if t is not None]
        runs[mode] = {"model": m, "opt": opt, "params": params, "times": [],
                      "frozen_bytes": _bytes(p for p in m.parameters() if not p.requires_grad)
                      + _bytes(s._rows.old for s in {id(s): s for s in frozen_rows}.values())}

    def step(run: dict) -> float:
        t0 = time.perf_counter()
        loss = run["model"](input_ids=ids, labels=ids).loss
        loss.backward()
        run["grad_bytes"] = _bytes(p.grad for p in run["params"] if p.grad is not None)
        run["opt"].step()
        run["opt"].zero_grad(set_to_none=True)
        return time.perf_counter() - t0

    for run in runs.values():  # warm-up (also creates the optimizer state)
        step(run)
    for _ in range(steps):
        for run in runs.values():
            run["times"].append(step(run))
    out = {"config": CONFIGS[name], "tokens_per_step": int(ids.numel()), "modes": {}}
    for mode, run in runs.items():
        state = [v for s in run["opt"].state.values() for v in s.values() if torch.is_tensor(v)]
        out["modes"][mode] = {
            "trainable_parameters": sum(p.numel() for p in run["params"]),
            "parameter_bytes": _bytes(run["params"]) + run["frozen_bytes"],
            "gradient_bytes": run["grad_bytes"],
            "optimizer_state_bytes": _bytes(state),
            "step_seconds_median": statistics.median(run["times"]),
            "step_seconds": [round(t, 4) for t in run["times"]],
        }
    full = out["modes"]["full"]
    for mode in MODES:
        if mode == "full":
            continue
        m = out["modes"][mode]
        m["optimizer_state_vs_full"] = m["optimizer_state_bytes"] / full["optimizer_state_bytes"]
        m["gradient_vs_full"] = m["gradient_bytes"] / full["gradient_bytes"]
        m["step_time_vs_full"] = m["step_seconds_median"] / full["step_seconds_median"]
    return out


def main() -> None:
    """Run the benchmark and write bench/results/training.json."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS))
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "training.json"))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    results = {"machine": {"python": platform.python_version(), "torch": torch.__version__,
                           "processor": platform.processor() or platform.machine(), "threads": a.threads},
               "steps": a.steps, "configs": {}}
    for name in a.configs:
        t0 = time.perf_counter()
        results["configs"][name] = bench_config(name, a.steps)
        modes = results["configs"][name]["modes"]
        print(f"{name} ({time.perf_counter() - t0:.0f} s):")
        for mode, m in modes.items():
            extra = (f"  optimizer {m['optimizer_state_vs_full']:.4f}x  step {m['step_time_vs_full']:.3f}x"
                     if mode != "full" else "")
            mib = {k: m[f"{k}_bytes"] / 2**20 for k in ("optimizer_state", "gradient")}
            print(f"  {mode:7s} {m['step_seconds_median']:.3f} s/step  optimizer state "
                  f"{mib['optimizer_state']:8.1f} MiB  gradients {mib['gradient']:8.1f} MiB{extra}")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"-> {a.out}")


if __name__ == "__main__":
    main()
