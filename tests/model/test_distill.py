"""Token Distillation: teacher and student sequences line up, the fitted rows lower the hidden-state MSE, runs
repeat bit for bit, and nothing but the new input rows changes."""

from __future__ import annotations

import copy
import logging
import re

import numpy as np
import pytest
import torch

from vocab_expansion.model import distill as distillib
from vocab_expansion.model.inits import InitRows

KNOBS = {"contexts": 3, "context_tokens": 8, "steps": 8, "batch_size": 4}


def test_teacher_and_student_line_up(tiny_case):
    """A window a, NEW, b, c: the teacher reads a, p, q, b, c, the student a, NEW, b, c; the loss compares the
    teacher from q on with the student from NEW on. With one piece and its own row the two are the same model
    run on the same numbers: loss 0."""
    case = tiny_case("llama")
    body, old = case.model.base_model, case.model.get_input_embeddings().weight.detach()
    new_id, (a, b, c, p, q) = case.base.size, (10, 20, 30, 40, 50)
    window = [[(np.array([a, new_id, b, c], dtype=np.int32), 1)]]
    rows = InitRows(old, [[p, q]], torch.Generator(), ids=[new_id])
    data = distillib._batch(rows, window, [0], case.base.size, length=8)
    assert data["teacher"].tolist() == [[a, p, q, b, c]] and data["student"].tolist() == [[a, 0, b, c]]
    assert data["loss_t"].tolist() == [2, 3, 4] and data["loss_s"].tolist() == [1, 2, 3]
    rows = InitRows(old, [[p]], torch.Generator(), ids=[new_id])
    data = distillib._batch(rows, window, [0], case.base.size, length=8)
    _, first, _ = distillib._fit(body, old, old[[p]], data, steps=0, lr=0.0)
    assert first == 0.0


@pytest.mark.parametrize("family", ["llama", "qwen2"])  # qwen2: tied embeddings
def test_distill_on_a_tiny_model(text_case, family, caplog):
    runs = []
    for _ in range(2):
        tc = text_case(family)
        model = tc.case.model
        ref = copy.deepcopy(model)
        with caplog.at_level(logging.INFO, logger="vocab_expansion.model.distill"):
            tc.expand({"input": "distill", "distill": KNOBS})
        n_old = tc.case.base.size
        w, ref_w = model.get_input_embeddings().weight, ref.get_input_embeddings().weight
        assert w.shape[0] == n_old + len(tc.ids) and torch.equal(w[:n_old], ref_w)
        # the blocks are the base's, frozen flags and eval mode as they were
        for (name, param), (_, ref_param) in zip(model.named_parameters(), ref.named_parameters(), strict=True):
            assert param.requires_grad == ref_param.requires_grad, name
            if "embed" not in name and "lm_head" not in name:
                assert torch.equal(param, ref_param), name
        assert not model.training
        means = torch.stack([ref_w[p].mean(dim=0) for p in tc.case.pieces])
        moved = [not torch.equal(w[n_old + i], means[i]) for i in range(len(tc.ids))]
        assert moved == tc.occurs() and any(moved)
        runs.append(w[n_old:].clone())
    assert torch.equal(runs[0], runs[1])
    first, last = map(float, re.search(r"MSE from (\S+) \(mean of pieces\) to (\S+) after", caplog.text).groups())
    assert last < first


def test_no_steps_keep_the_mean_of_pieces(text_case):
    tc = text_case("llama")
    ref = copy.deepcopy(tc.case.model).get_input_embeddings().weight
    tc.expand({"input": "distill", "distill": {**KNOBS, "steps": 0}})
    w, n_old = tc.case.model.get_input_embeddings().weight, tc.case.base.size
    for i, p in enumerate(tc.case.pieces):
        assert torch.equal(w[n_old + i], ref[p].mean(dim=0))


def test_windows_are_a_bounded_seeded_sample(text_case):
    tc = text_case("llama")
    knobs = {"contexts": 2, "context_tokens": 3, "max_lines": 50}
    windows = distillib.sample_windows(tc.context(), tc.ids, knobs, seed=1)
    again = distillib.sample_windows(tc.context(), tc.ids, knobs, seed=1)
    assert [[(w.tolist(), at) for w, at in ws] for ws in windows] == [[(w.tolist(), at) for w, at in ws]
                                                                       for ws in again]
    assert [bool(ws) for ws in windows] == tc.occurs() and all(len(ws) <= 2 for ws in windows)
    for j, ws in enumerate(windows):
        for w, at in ws:
            assert w[at] == tc.ids[j] and len(w) <= 2 * 3 + 1 and at <= 3
