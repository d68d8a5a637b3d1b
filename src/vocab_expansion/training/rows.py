"""Row-level training: train the rows of the new tokens only, with gradients and optimizer state for them alone.

:func:`split_rows` swaps the input embedding and/or the lm_head for modules whose weight is two tensors:
the old rows ``[0, n_old)``, a frozen view of the original weight that no optimizer ever sees, and the new
rows, a small trainable parameter. No frozen value can move, weight decay included, and a stage that
trains new rows only pays for those rows in gradients and optimizer state. :func:`merge_rows` writes the
trained rows back into the original modules, which are then saved as usual.

Tied embeddings (one matrix for input and output) get one split shared by both modules.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional


class _Rows:
    """The frozen old rows and the trainable new rows of one matrix (and of a bias vector, if any)."""

    def __init__(self, weight: torch.Tensor, n_old: int, bias: torch.Tensor | None = None) -> None:
        self.n_old = n_old
        self.old = weight.detach()[:n_old]
        self.new = nn.Parameter(weight.detach()[n_old:].clone())
        self.old_bias = bias.detach()[:n_old] if bias is not None else None
        self.new_bias = nn.Parameter(bias.detach()[n_old:].clone()) if bias is not None else None


class _SplitModule(nn.Module):
    """A module standing in for ``original`` whose rows from ``n_old`` on are a separate trainable parameter."""

    def __init__(self, original: nn.Module, rows: _Rows) -> None:
        super().__init__()
        self._original = [original]  # kept out of the module tree: its weight is not a parameter here
        self._rows = rows
        self.new_rows = rows.new

    @property
    def weight(self) -> torch.Tensor:
        """The whole matrix (a copy), for code that reads ``get_input_embeddings().weight``."""
        return torch.cat([self._rows.old, self.new_rows.detach()])


class SplitEmbedding(_SplitModule):
    """An input embedding whose rows from ``n_old`` on are a separate trainable parameter."""

    def __init__(self, original: nn.Embedding, rows: _Rows) -> None:
        super().__init__(original, rows)
        self.padding_idx = original.padding_idx

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        n_old = self._rows.n_old
        old = functional.embedding(ids.clamp(max=n_old - 1), self._rows.old)
        is_new = ids >= n_old
        if not bool(is_new.any()):
            return old + 0 * self.new_rows[:1].sum()  # keep the new rows in the graph (DDP expects a gradient)
        new = functional.embedding((ids - n_old).clamp(min=0), self.new_rows)
        return torch.where(is_new.unsqueeze(-1), new, old)


class SplitHead(_SplitModule):
    """An lm_head whose output rows (and bias entries) from ``n_old`` on are a separate trainable parameter."""

    def __init__(self, original: nn.Linear, rows: _Rows) -> None:
        super().__init__(original, rows)
        self.new_bias = rows.new_bias

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        rows = self._rows
        old = functional.linear(hidden, rows.old, rows.old_bias)
        new = functional.linear(hidden, self.new_rows, self.new_bias)
        return torch.cat([old, new], dim=-1)


@dataclass
class RowSplit:
    """What :func:`split_rows` changed, to undo with :func:`merge_rows`."""

    embedding: SplitEmbedding | None
    head: SplitHead | None


def _find_parent(model: nn.Module, child: nn.Module) -> tuple[nn.Module, str]:
    for name, module in model.named_modules():
        if module is child:
            parent_name, _, attr = name.rpartition(".")
            return model.get_submodule(parent_name), attr
    raise ValueError("module not found in the model")


def _replace(model: nn.Module, old: nn.Module, new: nn.Module) -> None:
    parent, attr = _find_parent(model, old)
    setattr(parent, attr, new)


def split_rows(model: nn.Module, n_old: int, embedding: bool, head: bool) -> RowSplit:
    """Make the new rows of the input embedding and/or the lm_head separately trainable.

    ``model`` is a Hugging Face causal LM (or anything with ``get_input_embeddings`` and
    ``get_output_embeddings``). With tied embeddings, asking for either splits the shared matrix once and
    both modules use it.
    """
    emb = model.get_input_embeddings()
    out = model.get_output_embeddings()
    tied = out is not None and out.weight is emb.weight
    if emb.weight.shape[0] <= n_old:
        raise ValueError(f"no new rows to train: the embedding has {emb.weight.shape[0]} rows and {n_old} old tokens")
    split_emb = split_head = None
    if tied and (embedding or head):
        rows = _Rows(emb.weight, n_old, getattr(out, "bias", None))
        split_emb, split_head = SplitEmbedding(emb, rows), SplitHead(out, rows)
    else:
        if embedding:
            split_emb = SplitEmbedding(emb, _Rows(emb.weight, n_old))
        if head:
            split_head = SplitHead(out, _Rows(out.weight, n_old, getattr(out, "bias", None)))
    if split_emb is not None:
        _replace(model, emb, split_emb)
    if split_head is not None:
        _replace(model, out, split_head)
    return RowSplit(split_emb, split_head)


@torch.no_grad()
def merge_rows(model: nn.Module, split: RowSplit) -> None:
    """Write the trained new rows back into the original modules and put those modules back in ``model``."""
    for module in (split.embedding, split.head):
        if module is None:
            continue
        original = module._original[0]
        rows = module._rows
        original.weight.data[rows.n_old:] = rows.new.data
        if rows.new_bias is not None and getattr(original, "bias", None) is not None:
            original.bias.data[rows.n_old:] = rows.new_bias.data
        _replace(model, module, original)
