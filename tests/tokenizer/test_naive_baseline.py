"""Against the naive merge of the calibration runs: more Korean cut at the same vocabulary growth (Llama-2)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import regex
import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as pb

from tests.conftest import read_lines
from vocab_expansion.tokenizer.intermediate import intermediate_surfaces, train_intermediate
from vocab_expansion.tokenizer.merge import plan_merge, sentencepiece_proto
from vocab_expansion.tokenizer.select import merge_order


def _naive(base_model: bytes, pieces: list[str], texts: list[str], min_count: int) -> tuple[bytes, int]:
    """Append raw pieces below every base score, drop those emitted < min_count, repeat to a fixed point."""
    current = list(pieces)
    while True:
        proto = pb.ModelProto()
        proto.ParseFromString(base_model)
        n_base, low = len(proto.pieces), min(p.score for p in proto.pieces)
        for i, piece in enumerate(current):
            p = proto.pieces.add()
            p.piece, p.score, p.type = piece, low - 128.0 * (i + 1), pb.ModelProto.SentencePiece.NORMAL
        blob = proto.SerializeToString()
        sp = spm.SentencePieceProcessor(model_proto=blob)
        counts = Counter(i for ids in sp.encode(texts) for i in ids if i >= n_base)
        keep = [p for i, p in enumerate(current) if counts[n_base + i] >= min_count]
        if len(keep) == len(current):
            return blob, len(current)
        current = keep


def test_beats_naive_merge_at_same_vocabulary_growth(learn, reviews, shared, tmp_path):
    ours = learn("llama2")
    base = ours.base
    base_blob = Path(base.sp_model_path).read_bytes()
    have = base.surfaces()
    hangul = regex.compile(r"^ ?\p{Hangul}+$")
    inter = intermediate_surfaces("sentencepiece", train_intermediate(base, reviews[0], tmp_path / "i", 16_000))
    naive_pieces = [base.token(s) for s in inter if hangul.match(s) and s not in have]
    naive_blob, n_naive = _naive(base_blob, naive_pieces, reviews[1], 30)

    # ours, cut back to the same number of appended entries (tokens taken most frequent first)
    freq = {d.surface: d.frequency for d in ours.selection.decisions if d.decision == "kept"}
    ranked = sorted(freq, key=lambda s: -freq[s])
    lo, hi = 0, len(ranked)
    while lo < hi:  # the largest k whose plan appends at most n_naive entries
        mid = (lo + hi + 1) // 2
        if len(plan_merge(base, merge_order(ranked[:mid])).entries) <= n_naive:
            lo = mid
        else:
            hi = mid - 1
    plan = plan_merge(base, merge_order(ranked[:lo]))
    ours_sp = spm.SentencePieceProcessor(model_proto=sentencepiece_proto(base, plan))

    news = read_lines(shared / "parallel" / "koen_news_dev.ko")
    n_base_tokens = sum(map(len, spm.SentencePieceProcessor(model_proto=base_blob).encode(news)))
    cut_naive = 1 - sum(map(len, spm.SentencePieceProcessor(model_proto=naive_blob).encode(news))) / n_base_tokens
    cut_ours = 1 - sum(map(len, ours_sp.encode(news))) / n_base_tokens
    print(f"\nLlama-2, {n_naive} naive pieces: {100 * cut_naive:.1f}% fewer Korean tokens; ours with "
          f"{len(plan.entries)} entries ({lo} selected tokens): {100 * cut_ours:.1f}%")
    assert len(plan.entries) <= n_naive
    assert cut_ours > cut_naive
