"""Benchmark of the stage steps on one GPU: tokens/s, MFU and peak memory beside the memory plan's figure.

Random-initialised models through the trainer's code: ``methods.build_stage_model`` on the meta device
(bf16: frozen weights bf16, trainable fp32; sdpa), allocated with random weights instead of a checkpoint,
``loss.CausalLMLoss``, the trainer's AdamW (fused on CUDA), ``passes.accumulate`` (bf16 autocast) in a process
group of one, ``optimizer.clip_grad_norm``; ``passes.evaluate`` for the intrinsic eval. Models (seq_len 4096,
128,256 + 8,960 new tokens = 137,216 rows): ``8b`` (configs/model_configs/llama-3-8b) and ``1b`` (Llama-3.2-1B's
shape, hidden 2048, 16 blocks, 32 / 8 KV heads, intermediate 8192, but untied embeddings so stages 1 and 2 train
different rows). Per model: stage 1 (``[embed_new]``), stage 2 (``[head_new]``) and the eval on its model, a full
step (``[all]``) unless ``plan.memory.plan_stage`` says one GPU cannot hold it at micro-batch 1 (the 8B).
Micro-batch: the largest power of two <= 8 whose plan for the heaviest stage run fits 85% of the GPU (halved on an
OOM). Each: 2 warm-up steps, the median of 3; MFU = ``plan.flops.flops_per_token`` x tokens/s /
``plan.flops.peak_flops``; peak max_memory_allocated beside the plan's total (world 1). Needs only torch,
transformers, peft, accelerate. About 1-2 minutes on an H200 (writes bench/results/gpu.json); seconds on a CPU
with tiny models ($TMPDIR/gpu_tiny.json):

    PYTHONPATH=src python bench/gpu.py
    PYTHONPATH=src .venv/bin/python bench/gpu.py --device cpu --tiny
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import gc
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import transformers
from transformers import LlamaConfig

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from vocab_expansion.training import passes  # noqa: E402
from vocab_expansion.training.dist import process_group  # noqa: E402
from vocab_expansion.training.loss import CausalLMLoss  # noqa: E402
from vocab_expansion.training.methods import build_stage_model  # noqa: E402
from vocab_expansion.training.optimizer import clip_grad_norm, make_optimizer  # noqa: E402
from vocab_expansion.training.plan.flops import flops_per_token, peak_flops  # noqa: E402
from vocab_expansion.training.plan.memory import GIB, plan_stage  # noqa: E402
from vocab_expansion.training.plan.workflow import expanded_vocab, load_model_config  # noqa: E402
from vocab_expansion.training.stages import StageSpec  # noqa: E402
from vocab_expansion.training.weights import allocate  # noqa: E402

STAGES = {"stage1": ("embed_new",), "stage2": ("head_new",), "full": ("all",)}
PARTS = ("parameters", "gradients", "optimizer", "buffers", "activations")
LLAMA_1B = dict(hidden_size=2048, num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=8, head_dim=64,
                intermediate_size=8192, rope_theta=500000.0, rms_norm_eps=1e-5, max_position_embeddings=8192)
TINY = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, intermediate_size=192)
WARMUP, MAX_MICRO = 2, 8


def model_config(name: str, tiny: bool) -> tuple[object, int]:
    """(a transformers config with the expanded vocabulary, the old vocabulary size) of model ``name``."""
    if tiny:
        old, new = (512, 64) if name == "8b" else (256, 40)
        config = LlamaConfig(tie_word_embeddings=False, max_position_embeddings=512, **TINY)
    else:
        old, new = 128256, 8960
        config = (load_model_config(ROOT / "configs/model_configs/llama-3-8b/config.json") if name == "8b"
                  else LlamaConfig(tie_word_embeddings=False, **LLAMA_1B))
    config.vocab_size = expanded_vocab(old, new, 64)
    return config, old


def build(config, old: int, stage: str):
    """The stage model on the meta device (the trainer's build)."""
    spec = StageSpec.from_config(stage, {"train": list(STAGES[stage]), "precision": "bf16",
                                         "attn_implementation": "sdpa", "batch_size": 1, "micro_batch_size": 1,
                                         "grad_clip": 1.0, "lr": 1e-5})
    lineage = {"old_vocab": old, "new_blocks": [], "stages": []}
    return build_stage_model(copy.deepcopy(config), lineage, spec)


@torch.no_grad()
def allocate_random(module: torch.nn.Module, device: torch.device) -> None:
    """``weights.fill_from_checkpoint`` without a checkpoint: the same allocation, random weights."""
    allocate(module, device)
    gen = torch.Generator(device).manual_seed(0)
    for p in module.parameters():
        p.normal_(0.0, 0.02, generator=gen) if p.ndim >= 2 else p.fill_(1.0)


class RandomData:
    """Random packed rows (one document a row) with the trainer's batch keys, for ``passes.evaluate``."""

    def __init__(self, vocab: int, seq_len: int, n_val: int = 0) -> None:
        self.vocab, self.seq_len, self.n_val, self.rng = vocab, seq_len, n_val, np.random.default_rng(0)

    def batch(self, split: str, rows: np.ndarray) -> dict[str, np.ndarray]:
        ids = self.rng.integers(0, self.vocab, (len(rows), self.seq_len), dtype=np.int64)
        return {"input_ids": ids, "labels": ids.copy(),
                "position_ids": np.broadcast_to(np.arange(self.seq_len, dtype=np.int64), ids.shape).copy()}

    def val_bytes(self, n: int) -> float:
        return 0.0


def sync(d, reset_peak: bool = False) -> None:
    if d.device.type == "cuda":
        torch.cuda.synchronize(d.device)
        if reset_peak:
            torch.cuda.reset_peak_memory_stats(d.device)


def gib(n: float | None) -> float | None:
    return None if n is None else round(n / GIB, 3)


def figures(plan_bytes: int, seconds: list[float], tokens: int, d, flops: float) -> dict:
    """tokens/s, MFU, and the measured peak memory beside the plan's figure, of one measurement."""
    step = statistics.median(seconds)
    out = {"step_seconds_median": round(step, 4), "step_seconds": [round(s, 4) for s in seconds],
           "tokens_per_step": tokens, "tokens_per_s": round(tokens / step, 1), "flops_per_token": flops,
           "mfu": None, "peak_mem_gib": None, "plan_gib": gib(plan_bytes), "peak_vs_plan": None}
    if d.device.type == "cuda":
        peak = peak_flops(torch.cuda.get_device_name(d.device))
        out["mfu"] = round(flops * tokens / step / peak, 4) if peak else None
        measured = torch.cuda.max_memory_allocated(d.device)
        out["peak_mem_gib"], out["peak_vs_plan"] = gib(measured), round(measured / plan_bytes, 3)
    return out


def measure(sm, micro: int, args, d, evaluate: bool) -> dict:
    """Warm-up and timed optimizer steps of one stage through the trainer's functions (then the evaluation)."""
    before = gib(torch.cuda.memory_allocated(d.device) if d.device.type == "cuda" else None)
    loss = CausalLMLoss(sm.hf, sm.spec.loss_chunk)
    allocate_random(loss, d.device)
    opt = make_optimizer(loss, sm.spec, d.device)
    params = [p for p in loss.parameters() if p.requires_grad]
    data = RandomData(sm.hf.config.vocab_size, args.seq_len)
    loss.train()

    def step() -> tuple[float, int]:
        sync(d)
        t0 = time.perf_counter()
        _, tokens = passes.accumulate(loss, sm.spec, [data.batch("train", np.arange(micro))], d)
        clip_grad_norm(params, sm.spec.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync(d)
        return time.perf_counter() - t0, tokens

    for _ in range(WARMUP):
        step()
    static = gib(torch.cuda.memory_allocated(d.device) if d.device.type == "cuda" else None)  # weights + AdamW
    sync(d, reset_peak=True)
    timed = [step() for _ in range(args.steps)]
    plan = plan_stage(sm, 1, micro, args.seq_len)
    flops = flops_per_token(sm, args.seq_len)
    out = {"micro_batch": micro, **figures(plan["total"], [t for t, _ in timed], timed[0][1], d, flops),
           "plan_parts_gib": {k: gib(plan[k]) for k in PARTS}, "trainable_parameters": plan["trainable_parameters"],
           "allocated_before_gib": before, "static_gib": static,
           "plan_static_gib": gib(plan["parameters"] + plan["optimizer"])}
    if not evaluate:
        return out
    # passes.evaluate (no-grad forwards under autocast) of the trained model, after one warm-up batch
    val = RandomData(sm.hf.config.vocab_size, args.seq_len, n_val=micro * args.eval_batches)
    passes.evaluate(loss, dataclasses.replace(sm.spec, eval_batches=1), val, micro, d)
    sync(d, reset_peak=True)
    t0 = time.perf_counter()
    passes.evaluate(loss, sm.spec, val, micro, d)
    sync(d)
    seconds = (time.perf_counter() - t0) / args.eval_batches
    fwd = flops - 2 * sm.hf.get_output_embeddings().new_rows.numel()  # stage 2 less its new rows' weight gradient
    out["eval"] = {"batches": args.eval_batches, "micro_batch": micro,
                   **figures(plan["parameters"] + plan["optimizer"], [seconds], micro * args.seq_len, d, fwd),
                   "plan_note": "plan figure: parameters + AdamW state (the plan has no evaluation activations)"}
    return out


def bench_model(name: str, config, old: int, args, d, gpu_bytes: float) -> dict:
    """Every measurement of one model: stage 1, stage 2 (+ the evaluation) and, where the plan fits, full."""
    full_plan = plan_stage(build(config, old, "full"), 1, 1, args.seq_len)
    run_full = full_plan["total"] <= gpu_bytes
    heaviest, micro = build(config, old, "full" if run_full else "stage1"), args.micro or MAX_MICRO
    while not args.micro and micro > 1 and plan_stage(heaviest, 1, micro, args.seq_len)["total"] > 0.85 * gpu_bytes:
        micro //= 2
    shape = {k: v for k, v in config.to_dict().items() if k.endswith(("_size", "_heads", "_layers"))}
    res: dict = {"config": shape, "old_vocab": old, "micro_batch": micro, "stages": {}}
    for stage in STAGES:
        if stage == "full" and not run_full:
            res["stages"]["full"] = {"skipped": "the plan does not fit one GPU even at micro-batch 1",
                                     "plan_gib": gib(full_plan["total"]), "gpu_gib": gib(gpu_bytes),
                                     "plan_parts_gib": {k: gib(full_plan[k]) for k in PARTS}}
            print(f"  {name} full    skipped: plan {gib(full_plan['total'])} GiB > {gib(gpu_bytes)} GiB", flush=True)
            continue
        while True:  # an OOM halves the micro-batch; any other error is recorded and the benchmark goes on
            sm = build(config, old, stage)
            try:
                r = measure(sm, micro, args, d, evaluate=stage == "stage2" and args.eval_batches > 0)
                break
            except Exception as exc:
                r = {"error": f"micro-batch {micro}: {exc!r}"[:500]}
                res.setdefault("errors", []).append(r["error"])
                if not isinstance(exc, torch.cuda.OutOfMemoryError) or micro == 1:
                    break
                micro //= 2
            finally:
                del sm
                gc.collect()
                torch.cuda.empty_cache()  # a no-op where CUDA is not initialised
        res["stages"][stage] = r
        print(f"  {name} {stage:7s} {line(r)}", flush=True)
        if "eval" in r:
            res["eval"] = r.pop("eval")
            print(f"  {name} eval    {line(res['eval'])}", flush=True)
    return res


def line(r: dict) -> str:
    if "tokens_per_s" not in r:
        return r.get("error", "")
    f = lambda v, fmt: "n/a" if v is None else format(v, fmt)  # noqa: E731
    return (f"micro {r['micro_batch']}  {r['step_seconds_median']:.3f} s  {r['tokens_per_s']:>9.0f} tok/s  "
            f"MFU {f(r['mfu'], '.1%')}  peak {f(r['peak_mem_gib'], '.2f')} GiB  plan {r['plan_gib']:.3g} GiB  "
            f"peak/plan {f(r['peak_vs_plan'], '.3f')}")


def goals(models: dict) -> dict:
    """The benchmark's goals, each with its figures and pass (None: not measurable here, e.g. on a CPU)."""
    small, big = models.get("1b", {}).get("stages", {}), models.get("8b", {}).get("stages", {})
    mfu = small.get("full", {}).get("mfu")
    out = {"1b_full_step_mfu_ge_40pct": {"mfu": mfu, "pass": None if mfu is None else mfu >= 0.40}}
    for stage in ("stage1", "stage2"):
        r = big.get(stage, {})
        runs, ratio = "tokens_per_s" in r, r.get("peak_vs_plan")
        ok = (False if big else None) if not runs else None if ratio is None else abs(ratio - 1) <= 0.10
        out[f"8b_{stage}_runs_and_plan_within_10pct"] = {"runs": runs, "peak_vs_plan": ratio, "pass": ok}
    s1, full = small.get("stage1", {}), small.get("full", {})  # step time per token (micro-batches may differ)
    rel = full["tokens_per_s"] / s1["tokens_per_s"] if "tokens_per_s" in s1 and "tokens_per_s" in full else None
    out["1b_stage1_step_le_0.7x_full"] = {"stage1_vs_full_time": None if rel is None else round(rel, 3),
                                          "pass": None if rel is None else rel <= 0.7}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    ap.add_argument("--tiny", action="store_true", help="tiny models (seconds on a CPU; checks the code path)")
    ap.add_argument("--models", nargs="+", default=["8b", "1b"], choices=["8b", "1b"])
    ap.add_argument("--seq-len", type=int, default=None, help="default 4096 (tiny: 64)")
    ap.add_argument("--micro", type=int, default=0, help="micro-batch (default: the plan's choice; tiny: 2)")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--eval-batches", type=int, default=4)
    ap.add_argument("--mem-gib", type=float, default=None, help="GPU memory to plan for (default: the device's)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    args.seq_len = args.seq_len or (64 if args.tiny else 4096)
    args.micro = args.micro or (2 if args.tiny else 0)
    out = args.out or (Path(tempfile.gettempdir()) / "gpu_tiny.json" if args.tiny else ROOT / "bench/results/gpu.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("no CUDA device; use --device cpu --tiny")
    with process_group() as d:
        if args.device == "cpu":
            d = dataclasses.replace(d, device=torch.device("cpu"))
            name, total = platform.processor() or platform.machine() or "cpu", 141e9
        else:
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True  # as the trainer
            name, total = torch.cuda.get_device_name(d.device), torch.cuda.get_device_properties(d.device).total_memory
        total = args.mem_gib * GIB if args.mem_gib else total
        torch.manual_seed(0)
        result = {"device": name, "device_memory_gib": gib(total), "peak_bf16_flops": peak_flops(name),
                  "torch": torch.__version__, "transformers": transformers.__version__,
                  "python": platform.python_version(), "command": " ".join(sys.argv),
                  "settings": {**{k: getattr(args, k) for k in ("seq_len", "steps", "eval_batches", "tiny")},
                               "warmup": WARMUP, "max_micro": MAX_MICRO,
                               "precision": "bf16 (frozen bf16, trainable fp32, bf16 autocast)", "attention": "sdpa",
                               "data": "uniform random ids, one document a row", "1b": "Llama-3.2-1B shape, untied"},
                  "models": {}}
        t_all = time.perf_counter()
        for m in args.models:
            config, old = model_config(m, args.tiny)
            print(f"{m}: vocabulary {old} -> {config.vocab_size}, seq_len {args.seq_len}", flush=True)
            t0, result["models"][m] = time.perf_counter(), bench_model(m, config, old, args, d, total)
            result["models"][m]["seconds"] = round(time.perf_counter() - t0, 1)
            out.write_text(json.dumps(result, indent=2) + "\n")  # so far: a run cut short keeps what it measured
        result["goals"] = goals(result["models"])
        if d.device.type != "cuda":  # the goals are the GPU run's; tiny CPU figures only check the code path
            result["goals"] = {k: {**g, "pass": None} for k, g in result["goals"].items()}
        result["seconds"] = round(time.perf_counter() - t_all, 1)
    for k, g in result["goals"].items():
        verdict = {True: "PASS", False: "FAIL", None: "n/a"}[g["pass"]]
        print(f"goal {k}: {verdict}  {json.dumps({x: v for x, v in g.items() if x != 'pass'})}")
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{result['seconds']} s; wrote {out}")
    sys.exit(any("error" in r for m in result["models"].values() for r in m["stages"].values()))


if __name__ == "__main__":
    main()
