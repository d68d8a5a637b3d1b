"""Packing without cross-document attention, and a loss that does not depend on how a step is split.

* Each document of a packed row starts with BOS, position ids restart at every document, and attention stays
  inside the document: the logits of a document inside a packed row equal those of the document alone.
* The step's loss is a mean over all its predicted tokens: two micro-batches with different numbers of real
  tokens give the loss and gradients of one batch holding both.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from tests.conftest import nsmc_texts
from tests.training.conftest import stage_spec
from vocab_expansion.training.dist import process_group
from vocab_expansion.training.loss import CausalLMLoss
from vocab_expansion.training.pack import PackConfig, write_packed
from vocab_expansion.training.packed_data import PackedData, document_starts, positions
from vocab_expansion.training.passes import accumulate
from vocab_expansion.training.tokens import write_tokens
from vocab_expansion.training.train_data import IGNORE


def test_positions_restart_at_each_document():
    ids = np.array([[7, 1, 2, 0, 7, 3, 0, 7], [4, 0, 7, 5, 6, 0, 7, 8]])
    starts = document_starts(ids, bos_id=7, eos_id=0)
    assert positions(starts).tolist() == [[0, 1, 2, 3, 0, 1, 2, 0], [0, 1, 0, 1, 2, 3, 0, 1]]
    # no BOS: a document starts after each EOS
    assert positions(document_starts(ids, None, 0)).tolist() == [[0, 1, 2, 3, 0, 1, 2, 0], [0, 1, 0, 1, 2, 3, 0, 1]]


@pytest.mark.parametrize("family", ["llama", "qwen2", "phi"])
def test_packed_document_logits_equal_the_document_alone(tiny, shared, family, tmp_path):
    model_dir, _ = tiny(family)
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="sdpa").eval()
    bos = tok.bos_token_id if tok.bos_token_id not in (None, tok.eos_token_id) else None
    docs = [tok(t, add_special_tokens=False)["input_ids"][:20] for t in nsmc_texts(shared, 3)]
    width = sum(len(d) for d in docs) + len(docs) * (2 if bos is not None else 1)
    write_tokens(tmp_path / "docs", [(f"d{k}", d) for k, d in enumerate(docs)], len(tok), len(tok), seed=0)
    cfg = PackConfig.from_config({"seq_len": width, "val_fraction": 0.0}, seed=0)
    write_packed(tmp_path / "data", [str(tmp_path / "docs")], [], cfg, tok.eos_token_id, bos, len(tok))
    data = PackedData.load(tmp_path / "data")
    row = data.train[:]
    assert row.shape[0] == 1
    batch = data.batch("train", np.array([0]))
    starts = np.flatnonzero(batch["position_ids"][0] == 0)
    assert len(starts) == len(docs)
    if bos is not None:
        assert (row[0, starts] == bos).all(), "every document starts with BOS"
    assert (batch["labels"][0, starts] == IGNORE).all(), "a document's first token is never predicted"
    with torch.no_grad():
        packed = model(input_ids=torch.as_tensor(batch["input_ids"]),
                       position_ids=torch.as_tensor(batch["position_ids"]), use_cache=False).logits[0]
        ends = [*starts[1:], row.shape[1]]
        for s, e in zip(starts, ends, strict=True):
            alone = model(input_ids=torch.as_tensor(row[:, s:e].astype(np.int64))).logits[0]
            assert torch.allclose(packed[s:e], alone, atol=1e-5, rtol=1e-5), (s, (packed[s:e] - alone).abs().max())


def _micro(ids: list[list[int]], prompt: list[int], width: int) -> dict[str, np.ndarray]:
    input_ids = np.zeros((len(ids), width), dtype=np.int64)
    mask = np.zeros_like(input_ids)
    for i, r in enumerate(ids):
        input_ids[i, :len(r)], mask[i, :len(r)] = r, 1
    pos = np.arange(width)[None, :]
    labels = np.where((mask == 1) & (pos >= np.asarray(prompt)[:, None]), input_ids, IGNORE)
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}


def test_two_micro_batches_equal_one_batch_holding_both(tiny):
    model_dir, _ = tiny("llama")
    rng = np.random.default_rng(0)
    rows = [rng.integers(3, 500, size=n).tolist() for n in (14, 9, 5)]
    prompts = [3, 6, 1]  # unequal numbers of predicted tokens per row and per micro-batch
    split = [_micro(rows[:2], prompts[:2], 14), _micro(rows[2:], prompts[2:], 5)]
    whole = [_micro(rows, prompts, 14)]
    spec = stage_spec("t", ["all"])
    results = []
    with process_group() as d:
        for batches in (split, whole):
            torch.manual_seed(0)
            model = CausalLMLoss(AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).train(), 4)
            loss, _ = accumulate(model, spec, batches, d)
            results.append((loss, {n: p.grad.clone() for n, p in model.named_parameters()}))
    (loss_a, grads_a), (loss_b, grads_b) = results
    assert loss_a == pytest.approx(loss_b, rel=1e-6)
    for name, g in grads_a.items():
        # sums in another order (and sdpa over another padded width): rounding only
        assert torch.allclose(g, grads_b[name], atol=1e-6, rtol=1e-5), (name, (g - grads_b[name]).abs().max())
