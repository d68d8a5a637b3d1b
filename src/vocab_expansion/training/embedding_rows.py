"""Embedding-row training: train the embedding and lm_head rows of the new tokens only, with gradients and
optimizer state for them alone.

:func:`split_embedding_rows` swaps the input embedding and/or the lm_head for modules that hold the matrix as two
parameters: ``old`` (rows ``[0, n_old)``, ``requires_grad=False``, so no optimizer ever sees it) and
``new_rows`` (the new tokens' rows, trainable). No frozen value can move, weight decay included, and a stage
that trains new rows only pays for those rows in gradients and optimizer state. Both are registered
parameters, so FSDP shards them, dtype casts and mixed-precision policies reach them, and the frozen rows
can be stored in bf16 while the new rows keep fp32 master weights. (Buffers would do for the frozen rows,
but FSDP2 neither shards nor casts buffers: every GPU would hold the whole frozen matrix.)

:func:`merge_embedding_rows` turns a state dict of a split model back into the original names
(``<module>.weight`` = old rows then new rows), which is what a checkpoint saves; the module tree itself is
never restored, so the same code serves a sharded model whose full state dict was gathered.

Tied embeddings (one matrix for input and output) get one split whose parameters both modules share.
The head's forward writes both halves of the logits into one buffer (no ``torch.cat``, which holds a second
copy of the logits during the forward: gigabytes at a 137k vocabulary). The step's peak is the cross-entropy's
backward (log-probabilities, their gradient and the logits' gradient), which the chunked loss of
:mod:`vocab_expansion.training.loss` bounds (``bench/head_memory.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional

OLD, NEW, OLD_BIAS, NEW_BIAS = "old", "new_rows", "old_bias", "new_bias"


def _frozen(t: torch.Tensor) -> nn.Parameter:
    return nn.Parameter(t, requires_grad=False)


class _EmbeddingRows(nn.Module):
    """The old (frozen) and new (trainable) rows of one matrix, and of its bias vector if it has one."""

    def __init__(self, weight: torch.Tensor, n_old: int, bias: torch.Tensor | None = None) -> None:
        super().__init__()
        self.n_old = n_old
        self.old = _frozen(weight.detach()[:n_old])
        self.new_rows = nn.Parameter(weight.detach()[n_old:].clone())
        self.old_bias = _frozen(bias.detach()[:n_old]) if bias is not None else None
        self.new_bias = nn.Parameter(bias.detach()[n_old:].clone()) if bias is not None else None

    @property
    def n_rows(self) -> int:
        """All rows, old and new."""
        return self.n_old + self.new_rows.shape[0]


class SplitEmbedding(nn.Module):
    """An input embedding whose rows from ``n_old`` on are a separate trainable parameter."""

    def __init__(self, original: nn.Embedding, matrix: _EmbeddingRows) -> None:
        super().__init__()
        self.padding_idx = original.padding_idx
        self.old, self.new_rows = matrix.old, matrix.new_rows
        self.n_old = matrix.n_old

    @property
    def weight(self) -> torch.Tensor:
        """The whole matrix (a copy), for code that reads ``get_input_embeddings().weight``."""
        return torch.cat([self.old.detach(), self.new_rows.detach().to(self.old.dtype)])

    @property
    def num_embeddings(self) -> int:
        """Rows, old and new."""
        return self.n_old + self.new_rows.shape[0]

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """The embeddings of ``ids``: old rows for old ids, new rows for new ones."""
        n_old = self.n_old
        old = functional.embedding(ids.clamp(max=n_old - 1), self.old)
        new = functional.embedding((ids - n_old).clamp(min=0), self.new_rows)
        # the new rows are always in the graph (DDP expects a gradient for every trainable parameter)
        return torch.where((ids >= n_old).unsqueeze(-1), new.to(old.dtype), old)


class _SplitLinear(torch.autograd.Function):
    """``[h @ old.T + old_b, h @ new.T + new_b]`` written into one output buffer; gradients for ``h``, new rows."""

    @staticmethod
    def forward(ctx, hidden, old, new, old_bias, new_bias):
        flat = hidden.reshape(-1, hidden.shape[-1])
        n_old = old.shape[0]
        out = flat.new_empty(flat.shape[0], n_old + new.shape[0])
        # each half is written by a matmul straight into its column slice of one buffer (BLAS takes the row
        # stride), so the logits exist once; torch.cat would hold them twice
        for half, bias, cols in ((old, old_bias, slice(0, n_old)), (new, new_bias, slice(n_old, None))):
            w = half.to(flat.dtype)
            if bias is None:
                torch.mm(flat, w.t(), out=out[:, cols])
            else:
                torch.addmm(bias.to(flat.dtype), flat, w.t(), out=out[:, cols])
        ctx.save_for_backward(hidden, old, new)
        ctx.has_new_bias = new_bias is not None
        return out.view(*hidden.shape[:-1], out.shape[-1])

    @staticmethod
    def backward(ctx, grad):
        hidden, old, new = ctx.saved_tensors
        n_old = old.shape[0]
        g = grad.reshape(-1, grad.shape[-1])
        flat = hidden.reshape(-1, hidden.shape[-1])
        g_old, g_new = g[:, :n_old], g[:, n_old:]
        grad_hidden = grad_new = grad_new_bias = None
        if ctx.needs_input_grad[0]:
            grad_hidden = (g_old @ old.to(g.dtype) + g_new @ new.to(g.dtype)).view_as(hidden)
        if ctx.needs_input_grad[2]:
            grad_new = (g_new.t() @ flat.to(g.dtype)).to(new.dtype)
        if ctx.has_new_bias and ctx.needs_input_grad[4]:
            grad_new_bias = g_new.sum(0)
        return grad_hidden, None, grad_new, None, grad_new_bias


class SplitHead(nn.Module):
    """An lm_head whose output rows (and bias entries) from ``n_old`` on are a separate trainable parameter."""

    def __init__(self, original: nn.Linear, matrix: _EmbeddingRows) -> None:
        super().__init__()
        self.old, self.new_rows = matrix.old, matrix.new_rows
        self.old_bias, self.new_bias = matrix.old_bias, matrix.new_bias
        self.in_features = original.in_features
        self.out_features = matrix.n_rows

    @property
    def weight(self) -> torch.Tensor:
        """The whole matrix (a copy)."""
        return torch.cat([self.old.detach(), self.new_rows.detach().to(self.old.dtype)])

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """The logits of ``hidden`` over every row, old and new, in one buffer."""
        kind = hidden.device.type
        if torch.is_autocast_enabled(kind):  # the custom function's matmuls are not autocast: cast as linear would
            hidden = hidden.to(torch.get_autocast_dtype(kind))
        return _SplitLinear.apply(hidden, self.old, self.new_rows, self.old_bias, self.new_bias)


@dataclass
class EmbeddingRowSplit:
    """Which of the model's modules :func:`split_embedding_rows` replaced (module paths; None: not split)."""

    embedding: str | None
    head: str | None
    n_old: int = 0


def _path_of(model: nn.Module, child: nn.Module) -> str:
    for name, module in model.named_modules():
        if module is child:
            return name
    raise ValueError("module not found in the model")


def _replace(model: nn.Module, path: str, new: nn.Module) -> None:
    parent_name, _, attr = path.rpartition(".")
    setattr(model.get_submodule(parent_name), attr, new)


def split_embedding_rows(model: nn.Module, n_old: int, embedding: bool, head: bool) -> EmbeddingRowSplit:
    """Make the new rows of the input embedding and/or the lm_head separately trainable.

    ``model`` is a Hugging Face causal LM (or anything with ``get_input_embeddings`` and
    ``get_output_embeddings``), on any device including ``meta``. With tied embeddings, asking for either
    splits the shared matrix once and both modules use it.
    """
    emb = model.get_input_embeddings()
    out = model.get_output_embeddings()
    tied = out is not None and out.weight is emb.weight
    if emb.weight.shape[0] <= n_old:
        raise ValueError(f"no new rows to train: the embedding has {emb.weight.shape[0]} rows and {n_old} old tokens")
    emb_path = _path_of(model, emb)
    head_path = _path_of(model, out) if out is not None else None
    split = EmbeddingRowSplit(None, None, n_old)
    if tied and (embedding or head):
        matrix = _EmbeddingRows(emb.weight, n_old, getattr(out, "bias", None))
        _replace(model, emb_path, SplitEmbedding(emb, matrix))
        _replace(model, head_path, SplitHead(out, matrix))
        return EmbeddingRowSplit(emb_path, head_path, n_old)
    if embedding:
        _replace(model, emb_path, SplitEmbedding(emb, _EmbeddingRows(emb.weight, n_old)))
        split.embedding = emb_path
    if head:
        _replace(model, head_path, SplitHead(out, _EmbeddingRows(out.weight, n_old, getattr(out, "bias", None))))
        split.head = head_path
    return split


def embedding_row_source(name: str, split: EmbeddingRowSplit) -> tuple[str, slice] | None:
    """For a parameter name of the split model: (the original checkpoint name, the rows it holds); else None."""
    for path in (split.embedding, split.head):
        if path is None or not name.startswith(path + "."):
            continue
        leaf = name[len(path) + 1:]
        old, new = slice(0, split.n_old), slice(split.n_old, None)
        table = {OLD: ("weight", old), NEW: ("weight", new), OLD_BIAS: ("bias", old), NEW_BIAS: ("bias", new)}
        if leaf in table:
            what, part = table[leaf]
            return f"{path}.{what}", part
    return None


def merge_embedding_rows(state: dict[str, torch.Tensor], split: EmbeddingRowSplit, dtype: torch.dtype | None = None
                     ) -> dict[str, torch.Tensor]:
    """A state dict of the split model with the original names: ``weight`` = old rows then new rows.

    Everything else passes through (cast to ``dtype`` when given).
    """
    out: dict[str, torch.Tensor] = {}
    parts: dict[str, dict[str, torch.Tensor]] = {}
    for name, t in state.items():
        src = embedding_row_source(name, split)
        if src is None:
            out[name] = t if dtype is None else t.to(dtype)
        else:
            parts.setdefault(src[0], {})["old" if src[1].start == 0 else "new"] = t
    for name, p in parts.items():
        dt = dtype or p["old"].dtype
        out[name] = torch.cat([p["old"].to(dt), p["new"].to(dt)])
    return out
