"""Token Distillation (Dobler, Elliott & de Melo, ICLR 2026) for the input rows of new tokens
(``model.init.input: distill``).

A new token's meaning is not in the base's embedding rows of its pieces: the first blocks build it from them
("neural detokenization"). So each new row is *fitted*: in contexts from the target-language text, the base
model reading the token's pieces (the teacher) and the same model reading one embedding in their place (the
student) should produce the same last-layer hidden states after the token. Everything runs on the base model
through ``inputs_embeds`` (the blocks and old rows frozen; the new rows are the only parameters):

* contexts: up to ``contexts`` occurrences of each new token in the first ``max_lines`` lines of the text,
  tokenized with the merged tokenizer (a seeded reservoir sample, so every part of the sample can be picked),
  each a window of ``context_tokens`` base tokens, about half before the occurrence;
* teacher input: the window in base tokens (every merged token replaced by its base pieces), student input:
  the same with the occurrence's pieces replaced by the new row; loss: the MSE of the last-layer hidden states
  at the token's last position and every position after it (aligned: the student is ``len(pieces) - 1``
  shorter there; positions before are the same in both);
* AdamW (weight decay 0: decay would pull rows to 0, not to the base's scale; learning rate ``lr`` times the
  std of the old rows) on the rows of ``batch_size`` tokens at a time for ``steps`` steps, from the mean of the
  pieces; the teacher runs once per batch.

Memory is bounded by the batch (``batch_size`` x ``contexts`` windows) and the sample of windows (``contexts``
x ``context_tokens`` ids per new token), not by the text. It runs on ``device`` (null: cuda when there is one,
else where the model is), moving the model there for the time it runs. A token without any context keeps the
mean of its pieces.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from vocab_expansion.model.inits import InitContext, InitRows, mean_of_pieces, register

log = logging.getLogger(__name__)

Window = tuple[np.ndarray, int]  # merged-tokenizer ids around an occurrence, and the occurrence's index in them


def sample_windows(context: InitContext, ids: Sequence[int], knobs: Mapping[str, Any],
                   seed: int) -> list[list[Window]]:
    """Per new token (merged ids ``ids``): up to ``contexts`` windows of ``context_tokens`` merged tokens on each
    side of an occurrence, a reservoir sample over the first ``max_lines`` lines (each occurrence equally
    likely to be kept, whatever line it is on)."""
    k, half = knobs["contexts"], knobs["context_tokens"]
    local = np.full(max(len(context.merged), max(ids, default=0) + 1), -1, dtype=np.int64)
    local[list(ids)] = np.arange(len(ids))
    rng = random.Random(seed)
    seen = [0] * len(ids)
    out: list[list[Window]] = [[] for _ in ids]
    for line in context.encoded_lines(knobs["max_lines"], "distill"):
        arr = np.asarray(line, dtype=np.int32)
        for p in np.nonzero(local[arr] >= 0)[0].tolist():
            j = int(local[arr[p]])
            seen[j] += 1
            slot = len(out[j]) if len(out[j]) < k else rng.randrange(seen[j])
            if slot < k:  # reservoir sampling: the n-th occurrence replaces a kept one with probability k / n
                lo = max(0, p - half)
                window = (arr[lo:p + half + 1].copy(), p - lo)
                if slot == len(out[j]):
                    out[j].append(window)
                else:
                    out[j][slot] = window
    return out


def _base_sequence(window: Window, pieces: Sequence[int], pieces_of: Mapping[int, Sequence[int]],
                   base_size: int, length: int) -> tuple[list[int], int]:
    """The window in base ids (a new token as its pieces; one without pieces left out), cut to about ``length``
    ids, half before the occurrence; returns the ids and where the occurrence's pieces start."""
    merged, at = window
    before: list[int] = []
    for t in merged[:at].tolist():
        before.extend(pieces_of.get(t, ()) if t >= base_size else (t,))
    after: list[int] = []
    for t in merged[at + 1:].tolist():
        after.extend(pieces_of.get(t, ()) if t >= base_size else (t,))
    n_before = length // 2
    before, after = before[-n_before:] if n_before else [], after[:length - n_before]
    return [*before, *pieces, *after], len(before)


def _batch(rows: InitRows, windows: list[list[Window]], batch: Sequence[int], base_size: int,
           length: int) -> dict[str, torch.Tensor]:
    """Teacher and student ids (right-padded with 0: a causal model never lets a real position see the padding),
    the student's new-row slot per sequence, and the aligned loss positions."""
    pieces_of = dict(zip(rows.ids, rows.pieces, strict=True))
    teacher, student, slot, new_at = [], [], [], []
    loss_seq, loss_t, loss_s = [], [], []
    for b, j in enumerate(batch):
        pieces = list(rows.pieces[j])
        n = len(pieces)
        for window in windows[j]:
            seq, s = _base_sequence(window, pieces, pieces_of, base_size, length)
            i = len(teacher)
            teacher.append(seq)
            student.append([*seq[:s], 0, *seq[s + n:]])  # 0 is a placeholder: the new row goes in its place
            slot.append(b)
            new_at.append(s)
            positions = range(s + n - 1, len(seq))  # the token's last piece and everything after it
            loss_seq += [i] * len(positions)
            loss_t += positions
            loss_s += [t - (n - 1) for t in positions]

    def padded(seqs: list[list[int]]) -> torch.Tensor:
        width = max(map(len, seqs))
        return torch.tensor([s + [0] * (width - len(s)) for s in seqs])

    return {"teacher": padded(teacher), "student": padded(student), "slot": torch.tensor(slot),
            "new_at": torch.tensor(new_at), "loss_seq": torch.tensor(loss_seq), "loss_t": torch.tensor(loss_t),
            "loss_s": torch.tensor(loss_s)}


def _fit(body: torch.nn.Module, old: torch.Tensor, start: torch.Tensor, data: dict[str, torch.Tensor],
         steps: int, lr: float) -> tuple[torch.Tensor, float, float]:
    """AdamW with learning rate ``lr`` on the rows ``start`` (one per token of the batch) for ``steps`` steps;
    returns the rows and the loss at the first and the last step."""
    d = {k: v.to(old.device) for k, v in data.items()}
    with torch.no_grad():
        target = body(inputs_embeds=old[d["teacher"]], use_cache=False).last_hidden_state[d["loss_seq"], d["loss_t"]]
        target = target.float()
    rows = torch.nn.Parameter(start.to(old.device, torch.float32).clone())
    opt = torch.optim.AdamW([rows], lr=lr, weight_decay=0.0)
    base_emb = old[d["student"]]
    first = last = float("nan")
    for step in range(steps + 1):  # the last pass only measures the final loss
        emb = base_emb.index_put((torch.arange(len(d["slot"]), device=old.device), d["new_at"]),
                                 rows[d["slot"]].to(old.dtype))
        hidden = body(inputs_embeds=emb, use_cache=False).last_hidden_state[d["loss_seq"], d["loss_s"]]
        loss = torch.nn.functional.mse_loss(hidden.float(), target)
        if step == 0:
            first = float(loss.detach())
        if step == steps:
            last = float(loss.detach())
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return rows.detach(), first, last


def _device(model: torch.nn.Module, wanted: str | None) -> torch.device:
    """``model.init.distill.device``, or cuda when there is one, else where the model is."""
    if wanted:
        return torch.device(wanted)
    return torch.device("cuda") if torch.cuda.is_available() else next(model.parameters()).device


@register("distill", "input", options=("distill",))
def distill(rows: InitRows) -> torch.Tensor:
    """Token Distillation rows: fitted so the base model's last-layer hidden states after the new token match
    those after its pieces; tokens without a context keep the mean of their pieces."""
    context, knobs = rows.need_context("distill"), rows.options["distill"]
    out = mean_of_pieces(rows)
    seed = int(torch.randint(2**31 - 1, (1,), generator=rows.generator))
    windows = sample_windows(context, rows.ids, knobs, seed)
    todo = [j for j, w in enumerate(windows) if w]
    log.info("distill: %d of %d new tokens have contexts (%d windows)", len(todo), len(rows.ids),
             sum(map(len, windows)))
    if not todo:
        return out
    model = context.model
    home, device = next(model.parameters()).device, _device(model, knobs["device"])
    grad_flags = [p.requires_grad for p in model.parameters()]
    was_training = model.training
    torch.manual_seed(seed)  # nothing here draws, but a kernel that does would repeat
    try:
        model.to(device).eval().requires_grad_(False)  # only the new rows get gradients
        body, old = model.base_model, rows.old.to(device)
        # Adam's steps are about lr per coordinate whatever the gradient's scale: set relative to the rows' scale
        # so one default suits a 128-wide demo (std 0.04) and a 4096-wide 7B model
        lr = knobs["lr"] * float(rows.old.float().std())
        losses = []
        with torch.enable_grad():
            for start in range(0, len(todo), knobs["batch_size"]):
                batch = todo[start:start + knobs["batch_size"]]
                data = _batch(rows, windows, batch, context.base.size, knobs["context_tokens"])
                fitted, first, last = _fit(body, old, out[batch], data, knobs["steps"], lr)
                out[batch] = fitted.to(out.device, out.dtype)
                losses.append((first, last, len(batch)))
                if len(losses) % max(1, len(todo) // knobs["batch_size"] // 10) == 0:  # about every tenth
                    log.info("distill: %d of %d tokens, MSE %.4g -> %.4g", start + len(batch), len(todo), first, last)
    finally:
        model.to(home).train(was_training)
        for p, flag in zip(model.parameters(), grad_flags, strict=True):
            p.requires_grad_(flag)
    n = sum(w for *_, w in losses)
    log.info("distill: hidden-state MSE from %.4g (mean of pieces) to %.4g after %d steps, %d tokens",
             sum(f * w for f, _, w in losses) / n, sum(v * w for _, v, w in losses) / n, knobs["steps"], n)
    return out
