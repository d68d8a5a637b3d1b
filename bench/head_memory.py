"""Benchmark of the lm_head's memory per step at Llama-3's vocabulary: peak RSS of head + loss, forward and backward.

The head has 128,256 old rows (frozen) and 8,960 new rows (trainable) of ``--hidden`` columns (default 1,024, not
Llama-3's 4,096: the logits, which are what is measured, do not depend on it, and the matmuls are 4x cheaper on
this CPU; ``--hidden 4096`` runs the real shape, 4.5 GiB of weights per process). ``--tokens`` (default 4,096)
predicted positions with hidden states that require a gradient (as when the head back-propagates into the
decoder) go through the head and a summed cross-entropy, then backward. Variants:

* ``cat``: the old ``SplitHead``: two ``F.linear`` (old rows, new rows) and ``torch.cat`` of the two logit
  blocks, then ``cross_entropy(logits.float())``,
* ``linear``: one frozen ``nn.Linear``-style matrix of all rows and ``cross_entropy(logits.float())`` (what
  transformers does; no row split),
* ``split``: ``embedding_rows.SplitHead`` (both halves written into one buffer) and ``cross_entropy(logits.float())``,
* ``chunked``: ``embedding_rows.SplitHead`` and the trainer's chunked loss: ``loss._chunk_loss`` over ``--chunk``
  (1,024) positions at a time, each under ``torch.utils.checkpoint`` (non-reentrant), as ``loss.CausalLMLoss`` does.

Each variant runs in a fresh subprocess: the weights, hidden states and targets are allocated and a small warm-up
runs, then ``VmHWM`` is reset (``/proc/self/clear_refs``) and the figure is the high-water mark of the forward and
backward minus the resident size before it (the high-water mark after the forward alone is reported too; no
caller holds the logits during backward). ``--dtype fp32`` (default): everything float32, so ``.float()`` is a
no-op and the logits are ``tokens x vocab x 4`` bytes. ``--dtype bf16``: hidden states and old rows in bfloat16,
new rows float32 master weights (as a bf16 stage stores them), so the head's logits are bf16 and ``.float()``
makes the fp32 copy a GPU run pays. Ratios are to ``tokens x vocab x 4`` bytes in both. Figures go to
bench/results/head_memory.json (the stored figures: ``--dtype fp32 bf16``, about 5 minutes). Not a test:

    .venv/bin/python bench/head_memory.py [--threads 2] [--hidden 1024] [--tokens 4096] [--dtype fp32 bf16]
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import torch  # noqa: E402

OLD, NEW = 128256, 8960  # Llama-3's vocabulary, and the presets' new tokens
VARIANTS = ("cat", "linear", "split", "chunked")
MIB = 2**20


def _status(key: str) -> int:
    """A /proc/self/status figure in bytes (VmRSS, VmHWM)."""
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"^{key}:\s+(\d+) kB", text, re.MULTILINE).group(1)) * 1024


def _cat_loss(old: torch.Tensor, new: torch.Tensor, hidden: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The old ``SplitHead.forward`` (two linears, ``torch.cat``) and the float cross-entropy."""
    from torch.nn import functional

    logits = torch.cat([functional.linear(hidden, old), functional.linear(hidden, new.to(hidden.dtype))], dim=-1)
    return functional.cross_entropy(logits.float(), target, reduction="sum")


def _linear_loss(weight: torch.Tensor, hidden: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """One ``nn.Linear``-style head and the float cross-entropy (transformers' ``ForCausalLMLoss``, unshifted)."""
    from torch.nn import functional

    return functional.cross_entropy(functional.linear(hidden, weight).float(), target, reduction="sum")


def _step(variant: str, head, hidden: torch.Tensor, target: torch.Tensor, chunk: int) -> tuple[torch.Tensor, int]:
    """Forward and backward of one variant; returns the loss and the high-water mark after the forward.

    Each forward is a function returning the loss alone, so no caller holds the logits during backward (as
    ``model(**batch).loss.backward()`` and ``CausalLMLoss`` do not).
    """
    from torch.utils.checkpoint import checkpoint

    from vocab_expansion.training.loss import _chunk_loss

    if variant == "cat":
        loss = _cat_loss(*head, hidden, target)
    elif variant == "linear":
        loss = _linear_loss(head, hidden, target)
    elif variant == "split":
        loss = _chunk_loss(head, hidden, target, None)  # head(hidden).float(), summed cross-entropy: the whole batch
    else:  # CausalLMLoss's loop
        loss = hidden.new_zeros((), dtype=torch.float32)
        for i in range(0, target.numel(), chunk):
            loss = loss + checkpoint(_chunk_loss, head, hidden[i:i + chunk], target[i:i + chunk], None,
                                     use_reentrant=False)
    forward_peak = _status("VmHWM")
    loss.backward()
    return loss.detach(), forward_peak


def _inputs(variant: str, hidden_size: int, tokens: int, dtype: torch.dtype, seed: int = 0):
    """The head (weights as the variant holds them), hidden states that require a gradient, targets."""
    from torch import nn

    from vocab_expansion.training.embedding_rows import SplitHead, _EmbeddingRows

    gen = torch.Generator().manual_seed(seed)
    weight = torch.randn(OLD + NEW, hidden_size, generator=gen).mul_(0.02)
    hidden = torch.randn(tokens, hidden_size, generator=gen).to(dtype).requires_grad_(True)
    target = torch.randint(0, OLD + NEW, (tokens,), generator=gen)
    if variant == "linear":
        return weight.to(dtype), hidden, target  # frozen, like the old rows elsewhere
    old, new = weight[:OLD].to(dtype), nn.Parameter(weight[OLD:].clone())  # new rows: float32 master weights
    del weight
    if variant == "cat":
        return (old, new), hidden, target
    matrix = _EmbeddingRows(old, OLD)  # old: a frozen parameter on this tensor
    matrix.new_rows = new
    return SplitHead(nn.Linear(hidden_size, OLD + NEW, bias=False, device="meta"), matrix), hidden, target


def child(variant: str, hidden_size: int, tokens: int, dtype_name: str, chunk: int) -> dict:
    """One variant in this (fresh) process: the peak memory of its forward and backward."""
    import ctypes
    import gc

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
    small = _inputs(variant, 64, 8, dtype, seed=1)  # warm-up: kernels, allocator
    _step(variant, *small, 4)
    del small
    head, hidden, target = _inputs(variant, hidden_size, tokens, dtype)
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    before = _status("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    t0 = time.perf_counter()
    loss, forward_peak = _step(variant, head, hidden, target, chunk)
    seconds = time.perf_counter() - t0
    peak = _status("VmHWM")
    new_grad = head[1].grad if variant == "cat" else None if variant == "linear" else head.new_rows.grad
    grad_bytes = sum(g.numel() * g.element_size() for g in (hidden.grad, new_grad) if g is not None)
    return {"variant": variant, "dtype": dtype_name, "rss_before_mib": round(before / MIB, 1),
            "peak_rss_mib": round(peak / MIB, 1), "step_peak_mib": round((peak - before) / MIB, 1),
            "forward_peak_mib": round((forward_peak - before) / MIB, 1),
            "gradient_mib": round(grad_bytes / MIB, 1),
            "loss_per_token": float(loss) / tokens, "seconds": round(seconds, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--tokens", type=int, default=4096)
    ap.add_argument("--chunk", type=int, default=1024)
    ap.add_argument("--dtype", nargs="+", default=["fp32"], choices=["fp32", "bf16"])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--child", nargs=2, metavar=("VARIANT", "DTYPE"), help=argparse.SUPPRESS)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "head_memory.json"))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.child:
        print(json.dumps(child(a.child[0], a.hidden, a.tokens, a.child[1], a.chunk)))
        return
    vocab = OLD + NEW
    logits_mib = a.tokens * vocab * 4 / MIB
    runs: dict[str, dict] = {}
    for dtype in a.dtype:
        for variant in a.variants:
            cmd = [sys.executable, __file__, "--threads", str(a.threads), "--hidden", str(a.hidden), "--tokens",
                   str(a.tokens), "--chunk", str(a.chunk), "--child", variant, dtype]
            run = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
            run["peak_vs_logits"] = round(run["step_peak_mib"] / logits_mib, 3)
            run["forward_peak_vs_logits"] = round(run["forward_peak_mib"] / logits_mib, 3)
            runs.setdefault(dtype, {})[variant] = run
            print(f"{dtype} {variant:8s} peak {run['step_peak_mib']:8.1f} MiB = {run['peak_vs_logits']:.2f}x the fp32 "
                  f"logits ({logits_mib:.0f} MiB); forward alone {run['forward_peak_mib']:8.1f} MiB = "
                  f"{run['forward_peak_vs_logits']:.2f}x  {run['seconds']:.1f} s", flush=True)
    result = {"old_vocab": OLD, "new_vocab": NEW, "vocab": vocab, "hidden_size": a.hidden, "tokens": a.tokens,
              "chunk": a.chunk, "fp32_logits_mib": round(logits_mib, 1),
              "weights_mib": round(vocab * a.hidden * 4 / MIB, 1), "runs": runs, "threads": a.threads,
              "torch": torch.__version__, "machine": platform.machine(), "python": platform.python_version()}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"-> {a.out}")


if __name__ == "__main__":
    main()
