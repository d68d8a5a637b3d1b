"""FOCUS: sparsemax, the rows it builds from auxiliary vectors, and a seeded word2vec run on a tiny model."""

from __future__ import annotations

import copy
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from tests.conftest import ROOT
from vocab_expansion.model import focus as focuslib
from vocab_expansion.model.focus import sparsemax


def test_sparsemax():
    assert torch.equal(sparsemax(torch.tensor([1.0, 0.0])), torch.tensor([1.0, 0.0]))
    assert torch.allclose(sparsemax(torch.tensor([0.5, 0.4, -1.0])), torch.tensor([0.55, 0.45, 0.0]))
    z = torch.randn(50, 300, generator=torch.Generator().manual_seed(0))
    p = sparsemax(z)
    assert torch.allclose(p.sum(-1), torch.ones(50)) and (p >= 0).all()
    assert ((p > 0).sum(-1) < 300).all()  # sparse: most entries are exactly 0
    # the largest entries keep their order and their differences
    top = z.argmax(-1)
    assert torch.equal(p.argmax(-1), top)


def test_focus_rows_are_sparsemax_combinations_of_similar_base_rows(text_case, monkeypatch):
    """Auxiliary vectors chosen by hand: a new token whose vector is a base token's gets that token's row, one
    between two base tokens a mix of both, one without a vector the mean of its pieces."""
    tc = text_case("llama")
    ref = copy.deepcopy(tc.case.model).get_input_embeddings().weight
    a, b, c = 100, 200, 300  # base ids
    e = np.eye(3, dtype=np.float32)
    mixed = (e[0] + e[1]) / np.sqrt(2)
    vectors = {a: e[0], b: e[1], c: e[2], tc.ids[0]: e[0], tc.ids[1]: mixed.astype(np.float32)}
    monkeypatch.setattr(focuslib, "auxiliary_vectors", lambda context, knobs, seed: vectors)
    tc.expand({"input": "focus"})
    w, n_old = tc.case.model.get_input_embeddings().weight, tc.case.base.size
    assert torch.equal(w[:n_old], ref)
    assert torch.allclose(w[n_old], ref[a])
    # similarities (0.707, 0.707, 0): sparsemax gives a and b one half each
    assert torch.allclose(w[n_old + 1], (ref[a] + ref[b]) / 2)
    for i in range(2, len(tc.ids)):
        assert torch.equal(w[n_old + i], ref[tc.case.pieces[i]].mean(dim=0))


def test_focus_on_a_tiny_model(text_case):
    """word2vec on the merged tokenization: rows differ from the mean of pieces, repeat bit for bit, old rows
    stay; the tokens missing from the text (ABSENT, most intermediates) keep the mean of their pieces."""
    rows = []
    for _ in range(2):
        tc = text_case("qwen2")  # tied: the one matrix gets the input init
        ref = copy.deepcopy(tc.case.model).get_input_embeddings().weight
        tc.expand({"input": "focus", "focus": {"min_count": 1, "epochs": 2, "vector_size": 16}})
        w, n_old = tc.case.model.get_input_embeddings().weight, tc.case.base.size
        assert w.shape[0] == n_old + len(tc.ids) and torch.equal(w[:n_old], ref)
        rows.append(w[n_old:].clone())
        means = torch.stack([ref[p].mean(dim=0) for p in tc.case.pieces])
        same = [torch.equal(rows[-1][i], means[i]) for i in range(len(tc.ids))]
        assert same == [not seen for seen in tc.occurs()] and not all(same)
    assert torch.equal(rows[0], rows[1])


@pytest.mark.slow
def test_auxiliary_vectors_repeat_across_processes(text_case, tmp_path):
    """One worker and a seed: the same vectors whatever the interpreter's hash seed."""
    tc = text_case("llama")
    tc.merged.save_pretrained(tmp_path / "merged")
    code = f"""
import hashlib, pathlib
from transformers import AutoTokenizer
from vocab_expansion.model.focus import auxiliary_vectors
from vocab_expansion.model.inits import InitContext
ctx = InitContext(None, None, AutoTokenizer.from_pretrained({str(tmp_path / "merged")!r}),
                  pathlib.Path({str(tc.text)!r}))
v = auxiliary_vectors(ctx, dict(max_lines=100, vector_size=8, window=3, epochs=2, min_count=1), seed=7)
print(hashlib.sha256(b"".join(str(k).encode() + v[k].tobytes() for k in sorted(v))).hexdigest())
"""
    out = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT,
                          env={**os.environ, "PYTHONHASHSEED": seed}).stdout.strip() for seed in "12"}
    assert len(out) == 1, out
