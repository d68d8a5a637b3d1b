"""Benchmark of row-level training: what a stage-1 or stage-2 step costs against a full fine-tuning step.

For two Llama configurations (the demo's, and 12 layers x 768 with a 32,000 + 9,000 vocabulary), a random
model is saved as a checkpoint (with ``lineage.json``: the first ``old`` rows are old tokens) and every mode
runs the trainer's own code path on it: ``methods.build_stage_model`` on the meta device (row split,
trainable flags, storage dtypes), ``parallel.parallelize`` (``fill_from_checkpoint`` and the chunked
``CausalLMLoss``, chunk 1024), and per step ``passes.accumulate`` (forward and backward, bf16 autocast
for bf16), ``optimizer.clip_grad_norm`` and the trainer's AdamW (``optimizer.make_optimizer``), inside
``dist.process_group()`` (a world of one). Every mode steps on the same random batch, in which 40% of the
ids are new tokens. Memory is counted from the tensors themselves: parameters (trainable and frozen, as
stored), gradients (after backward) and optimizer state (after a step). Modes:

* ``full``: every parameter trains (full fine-tuning),
* ``stage1``: the input rows of the new tokens only (EEVE stage 1),
* ``stage2``: the lm_head rows of the new tokens only (EEVE stage 2),
* ``stage5``: new input rows and every lm_head row,

each in precision ``fp32`` (every parameter float32) and ``bf16`` (frozen parameters stored in bfloat16,
trainable ones float32 master weights, compute under CPU bf16 autocast). All modes of both precisions are
timed interleaved (round robin, after a warm-up step each); the median step time is reported, and ratios
are to full fine-tuning in the same precision. Figures go to bench/results/training.json. Not a test:

    .venv/bin/python bench/training.py [--threads 1] [--steps 5] [--configs demo large] [--precisions fp32 bf16]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM  # noqa: E402
from transformers.utils.logging import disable_progress_bar  # noqa: E402

from vocab_expansion.training.dist import Dist, process_group  # noqa: E402
from vocab_expansion.training.methods import build_stage_model  # noqa: E402
from vocab_expansion.training.optimizer import clip_grad_norm, make_optimizer  # noqa: E402
from vocab_expansion.training.parallel import parallelize  # noqa: E402
from vocab_expansion.training.passes import accumulate  # noqa: E402
from vocab_expansion.training.stages import StageSpec  # noqa: E402

CONFIGS = {
    "demo": {"old": 8000, "new": 6656, "hidden_size": 128, "num_hidden_layers": 4, "num_attention_heads": 4,
             "intermediate_size": 384, "batch": 16, "seq": 128},
    "large": {"old": 32000, "new": 9000, "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
              "intermediate_size": 3072, "batch": 4, "seq": 256},
}
MODES = {"full": ("all",), "stage1": ("embed_new",), "stage2": ("head_new",), "stage5": ("embed_new", "head_all")}
PRECISIONS = ("fp32", "bf16")
GOAL_CONFIG = "large"  # the acceptance figures are the 12-layer model's (the demo's new rows are 45% of its vocabulary)
GOALS = {"stage1": {"optimizer_state_vs_full": 0.05, "step_time_vs_full": 0.75},
         "stage2": {"optimizer_state_vs_full": 0.05, "step_time_vs_full": 0.45}}


def _bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def _checkpoint(name: str, folder: Path) -> tuple[LlamaConfig, dict, dict[str, np.ndarray]]:
    """Save the configuration's random model in ``folder``; returns its config, lineage and the batch."""
    c = dict(CONFIGS[name])
    old, new, batch, seq = c.pop("old"), c.pop("new"), c.pop("batch"), c.pop("seq")
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=old + new, num_key_value_heads=c["num_attention_heads"], tie_word_embeddings=False,
                      max_position_embeddings=seq, **c)
    LlamaForCausalLM(cfg).save_pretrained(folder)
    lineage = {"old_vocab": old, "new_blocks": [], "stages": []}
    (folder / "lineage.json").write_text(json.dumps(lineage))
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(0, old, (batch, seq), generator=gen)
    is_new = torch.rand((batch, seq), generator=gen) < 0.4
    ids[is_new] = torch.randint(old, old + new, (int(is_new.sum()),), generator=gen)
    return cfg, lineage, {"input_ids": ids.numpy(), "labels": ids.numpy()}


def _run(cfg: LlamaConfig, lineage: dict, folder: Path, mode: str, precision: str, batch_size: int, d: Dist) -> dict:
    """One mode's stage model, filled, wrapped in the chunked loss, with its optimizer."""
    spec = StageSpec.from_config(mode, {"train": list(MODES[mode]), "precision": precision, "lr": 1e-4,
                                        "weight_decay": 0.0, "grad_clip": 1.0, "batch_size": batch_size,
                                        "micro_batch_size": batch_size, "attn_implementation": "sdpa"})
    sm = build_stage_model(cfg, lineage, spec, model_dir=str(folder))
    module, model = parallelize(sm, d)
    params = [p for p in module.parameters() if p.requires_grad]
    return {"spec": spec, "module": module, "model": model, "params": params,
            "opt": make_optimizer(module, spec, d.device), "times": [],
            "trainable_bytes": _bytes(params),
            "frozen_bytes": _bytes(p for p in module.parameters() if not p.requires_grad),
            "frozen_dtypes": sorted({str(p.dtype) for p in module.parameters() if not p.requires_grad})}


def bench_config(name: str, steps: int, precisions: list[str], d: Dist) -> dict:
    """Step times and memory of every mode (in every precision) on one configuration."""
    runs: dict[tuple[str, str], dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        cfg, lineage, batch = _checkpoint(name, Path(tmp))
        for precision in precisions:
            for mode in MODES:
                runs[precision, mode] = _run(cfg, lineage, Path(tmp), mode, precision, batch["input_ids"].shape[0], d)

    def step(run: dict) -> float:
        t0 = time.perf_counter()
        run["loss"], _ = accumulate(run["model"], run["spec"], [batch], d)
        run["grad_bytes"] = _bytes(p.grad for p in run["params"] if p.grad is not None)
        clip_grad_norm(run["params"], run["spec"].grad_clip)
        run["opt"].step()
        run["opt"].zero_grad(set_to_none=True)
        return time.perf_counter() - t0

    for run in runs.values():  # warm-up (also creates the optimizer state)
        step(run)
    for _ in range(steps):
        for run in runs.values():
            run["times"].append(step(run))
    out: dict = {"config": CONFIGS[name], "tokens_per_step": int(batch["input_ids"].size), "precisions": {}}
    for (precision, mode), run in runs.items():
        state = [v for s in run["opt"].state.values() for v in s.values() if torch.is_tensor(v)]
        out["precisions"].setdefault(precision, {})[mode] = {
            "trainable_parameters": sum(p.numel() for p in run["params"]),
            "parameter_bytes": run["trainable_bytes"] + run["frozen_bytes"],
            "trainable_parameter_bytes": run["trainable_bytes"],
            "frozen_parameter_bytes": run["frozen_bytes"],
            "frozen_dtypes": run["frozen_dtypes"],
            "gradient_bytes": run["grad_bytes"],
            "optimizer_state_bytes": _bytes(state),
            "last_loss": run["loss"],
            "step_seconds_median": statistics.median(run["times"]),
            "step_seconds": [round(t, 4) for t in run["times"]],
        }
    for modes in out["precisions"].values():
        full = modes["full"]
        for mode, m in modes.items():
            if mode == "full":
                continue
            m["optimizer_state_vs_full"] = m["optimizer_state_bytes"] / full["optimizer_state_bytes"]
            m["gradient_vs_full"] = m["gradient_bytes"] / full["gradient_bytes"]
            m["step_time_vs_full"] = m["step_seconds_median"] / full["step_seconds_median"]
            if name == GOAL_CONFIG and mode in GOALS:
                m["meets_goal"] = all(m[k] <= v for k, v in GOALS[mode].items())
    if {"fp32", "bf16"} <= set(out["precisions"]):
        for mode, m in out["precisions"]["bf16"].items():
            m["step_time_vs_fp32"] = m["step_seconds_median"] / out["precisions"]["fp32"][mode]["step_seconds_median"]
    return out


def main() -> None:
    """Run the benchmark and write bench/results/training.json."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--precisions", nargs="+", default=list(PRECISIONS), choices=list(PRECISIONS))
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "training.json"))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    disable_progress_bar()
    results = {"machine": {"python": platform.python_version(), "torch": torch.__version__,
                           "processor": platform.processor() or platform.machine(), "threads": a.threads},
               "steps": a.steps, "loss_chunk": StageSpec.from_config("x", {"train": ["all"]}).loss_chunk,
               "goals": {GOAL_CONFIG: GOALS}, "configs": {}}
    with process_group() as d:
        for name in a.configs:
            t0 = time.perf_counter()
            results["configs"][name] = r = bench_config(name, a.steps, a.precisions, d)
            print(f"{name} ({time.perf_counter() - t0:.0f} s):")
            for precision, modes in r["precisions"].items():
                for mode, m in modes.items():
                    extra = (f"  optimizer {m['optimizer_state_vs_full']:.4f}x  step {m['step_time_vs_full']:.3f}x"
                             if mode != "full" else "")
                    if "meets_goal" in m:
                        extra += "  ok" if m["meets_goal"] else "  GOAL MISSED"
                    mib = {k: m[f"{k}_bytes"] / 2**20 for k in ("parameter", "optimizer_state", "gradient")}
                    print(f"  {precision} {mode:7s} {m['step_seconds_median']:.3f} s/step  parameters "
                          f"{mib['parameter']:7.1f} MiB  optimizer state {mib['optimizer_state']:7.1f} MiB  "
                          f"gradients {mib['gradient']:7.1f} MiB{extra}")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"-> {a.out}")


if __name__ == "__main__":
    main()
