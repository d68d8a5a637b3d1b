"""Merge planning details: SentencePiece score placement and reachability bookkeeping."""

from __future__ import annotations

from pathlib import Path

from sentencepiece import sentencepiece_model_pb2 as pb

from vocab_expansion.tokenizer.base import BaseTokenizer
from vocab_expansion.tokenizer.merge import plan_merge

WORDS = [" 영화", " 영화를", " 재밌다", "녕"]


def test_sentencepiece_scores_below_or_above_every_base_piece(shared):
    base = BaseTokenizer.load(str(shared / "tokenizers" / "llama2"))
    proto = pb.ModelProto()
    proto.ParseFromString(Path(base.sp_model_path).read_bytes())
    base_scores = [p.score for p in proto.pieces if p.type == pb.ModelProto.SentencePiece.NORMAL]
    for priority, check in (("below", lambda s: s < min(base_scores)), ("above", lambda s: s > max(base_scores))):
        plan = plan_merge(base, WORDS, priority)
        scores = [e.score for e in plan.entries]
        assert all(map(check, scores)), priority
        assert scores == sorted(scores, reverse=True) and len(set(scores)) == len(scores)  # added order kept
        assert {e.surface for e in plan.selected()} == set(WORDS) and not plan.unreachable
        assert all(e.role == "intermediate" for e in plan.entries if e.surface not in WORDS)


def test_base_tokens_are_not_added_again(shared):
    base = BaseTokenizer.load(str(shared / "tokenizers" / "llama3"))
    assert " 영화" in base.surfaces()
    plan = plan_merge(base, [" 영화", " 영화를"])
    assert [e.surface for e in plan.selected()] == [" 영화를"]
