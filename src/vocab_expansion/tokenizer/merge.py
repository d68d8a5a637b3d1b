"""Merge new tokens into a base tokenizer without breaking it.

Both kinds append: every base token keeps its id and string, and new tokens get ids after every
existing id (added and special tokens included). A new token must be *reachable*: encoding its own
surface text must give exactly that token. Tokens are taken in order; for each, the current merged
tokenizer's pieces of its surface are combined left to right, adding whatever intermediate tokens
(and, for byte-level BPE, merges) that needs, each ranked below everything before it, so base text
segments exactly as before and a token added earlier is never shadowed by one added later.

* SentencePiece: pieces are appended to the ModelProto as NORMAL pieces whose scores (the merge
  priority) lie below every base piece (``priority: below``, as Tejaswi et al. 2024 do) or above
  every base piece (``above``); byte fallback, control and user pieces are untouched.
* Byte-level BPE: entries are appended to ``model.vocab`` and ``model.merges`` of ``tokenizer.json``
  (in the base's own merge format). Added/special tokens that the base keeps outside ``model.vocab``
  (Llama-3's 256) are registered in it at their own ids, because ``tokenizers`` re-derives the id of
  an added token absent from the vocabulary from the vocabulary size, which would move them.
  ``ignore_merges`` (Llama-3) is kept: with it a whole pre-token found in the vocabulary is
  emitted directly, so new whole-word tokens are reachable either way, and sub-word ones through
  their merges.

Never ``add_tokens``: added tokens are matched as whole strings before the model runs, have no
merges and never form inside a longer piece.
"""

from __future__ import annotations

import copy
import json
import logging
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vocab_expansion import config as configlib
from vocab_expansion.tokenizer.base import BaseTokenizer
from vocab_expansion.tokenizer.bpe import bytelevel_bpe, sentencepiece_bpe

log = logging.getLogger(__name__)

TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json",
                   "added_tokens.json", "vocab.json", "merges.txt", "chat_template.jinja")
SP_SCORE_STEP = 128.0  # float32-safe spacing between appended scores (base scores reach -1e9)


@dataclass(frozen=True)
class MergeConfig:
    """Knobs of the merge (config: tokenizer.merge). Build it with :meth:`from_config`."""

    priority: str  # below | above every base piece
    pad_to_multiple_of: int | None  # embedding rows are padded to a multiple of this (reported here)

    @classmethod
    def from_config(cls, merge: Mapping[str, Any] | None) -> MergeConfig:
        """From the tokenizer.merge section (defaults filled from the schema)."""
        m = configlib.section("tokenizer.merge", merge)
        return cls(priority=m["priority"], pad_to_multiple_of=m["pad_to_multiple_of"])


@dataclass
class Entry:
    """One new vocabulary entry: its token string, surface, role and (byte-level) the merge that forms it."""

    token: str
    surface: str | None
    role: str  # selected | intermediate
    left: str | None = None
    right: str | None = None
    needed_by: str | None = None
    score: float | None = None  # SentencePiece score (merge priority)


@dataclass
class MergePlan:
    """The appended entries (in id order), byte-level merges (in rank order) and unreachable targets."""

    kind: str
    entries: list[Entry] = field(default_factory=list)
    merges: list[tuple[str, str]] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)

    def selected(self) -> list[Entry]:
        """The target tokens that were added."""
        return [e for e in self.entries if e.role == "selected"]


class Planner:
    """Incremental planning state shared by both kinds."""

    def __init__(self, base: BaseTokenizer, priority: str = "below"):
        self.base, self.kind, self.priority = base, base.kind, priority
        self.known: dict[str, int] = dict(base.vocab)
        self.plan = MergePlan(kind=base.kind)
        self.index: dict[str, Entry] = {}
        if self.kind == "sentencepiece":
            from sentencepiece import sentencepiece_model_pb2 as pb

            proto = pb.ModelProto()
            proto.ParseFromString(Path(base.sp_model_path).read_bytes())  # type: ignore[arg-type]
            self.scores = {p.piece: p.score for p in proto.pieces if p.type == pb.ModelProto.SentencePiece.NORMAL}
            # new pieces count down from just below the lowest base score, or from far above the highest
            # (2^20 steps of headroom), so a piece added later never outranks one added before it
            low, high = min(self.scores.values()), max(self.scores.values())
            self._next_score = np.float32(low if priority == "below" else high + SP_SCORE_STEP * 2**20)
        else:
            model = base.tokenizer_json["model"]  # type: ignore[index]
            self.ranks = {_merge_pair(m): i for i, m in enumerate(model["merges"])}
            self.ignore_merges = bool(model.get("ignore_merges"))

    def pieces(self, token: str) -> list[str]:
        """Segmentation of a token string under the current state."""
        if self.kind == "sentencepiece":
            return sentencepiece_bpe(token, self.scores)
        return bytelevel_bpe(token, self.ranks, self.known, self.ignore_merges)

    def _new_score(self) -> float:
        """The next score: each appended piece ranks just below the previous one."""
        self._next_score = np.float32(self._next_score - SP_SCORE_STEP)
        return float(self._next_score)

    def _add(self, token: str, left: str, right: str, role: str, needed_by: str) -> None:
        if self.kind == "bytelevel" and (left, right) not in self.ranks:  # never re-rank an existing merge
            self.ranks[(left, right)] = len(self.ranks)
            self.plan.merges.append((left, right))
        if token in self.known:
            return
        entry = Entry(token, self.base.surface(token), role, left, right, needed_by)
        if self.kind == "sentencepiece":
            entry.score = self.scores[token] = self._new_score()
        self.plan.entries.append(entry)
        self.index[token] = entry
        self.known[token] = len(self.known)

    def add_target(self, surface: str) -> bool:
        """Make ``surface`` a reachable token; False (and nothing kept) if that is impossible."""
        token = self.base.token(surface)
        if token in self.index:
            self.index[token].role = "selected"
            return True
        if token in self.base.vocab:
            return False
        snapshot = (len(self.plan.entries), len(self.plan.merges))
        if self.kind == "sentencepiece":
            # every character becomes a piece: SentencePiece merges unknown characters, but the fast
            # (tokenizers) conversion byte-falls them back before merging, and the two would disagree
            for ch in dict.fromkeys(token):
                if ch not in self.known:
                    self._add(ch, ch, "", "selected" if ch == token else "intermediate", surface)
        pieces = self.pieces(token)
        acc = pieces[0]
        for p in pieces[1:]:
            new = acc + p
            self._add(new, acc, p, "selected" if new == token else "intermediate", surface)
            acc = new
        if self.pieces(token) != [token]:
            self._rollback(*snapshot)
            self.plan.unreachable.append(surface)
            return False
        return True

    def _rollback(self, n_entries: int, n_merges: int) -> None:
        for e in self.plan.entries[n_entries:]:
            del self.known[e.token]
            del self.index[e.token]
            if self.kind == "sentencepiece":
                del self.scores[e.token]
        for pair in self.plan.merges[n_merges:]:
            del self.ranks[pair]
        del self.plan.entries[n_entries:]
        del self.plan.merges[n_merges:]


def base_pieces(base: BaseTokenizer) -> Callable[[str], list[str]]:
    """The base tokenizer's own segmentation of one token string (its pieces as base token strings)."""
    return Planner(base).pieces


def _merge_pair(m: str | Sequence[str]) -> tuple[str, str]:
    """A merge in either tokenizer.json format: "a b" or ["a", "b"]."""
    if isinstance(m, str):
        a, b = m.split(" ", 1)
        return a, b
    return m[0], m[1]


def plan_merge(base: BaseTokenizer, surfaces: Iterable[str], priority: str = "below") -> MergePlan:
    """Plan the entries that make every surface in ``surfaces`` (in order) a reachable new token."""
    if priority not in ("below", "above"):
        raise ValueError(f"tokenizer.merge.priority must be below or above, not {priority!r}")
    planner = Planner(base, priority)
    for s in surfaces:
        planner.add_target(s)
    return planner.plan


# --- building the merged tokenizer ------------------------------------------------------------
def sentencepiece_proto(base: BaseTokenizer, plan: MergePlan) -> bytes:
    """The merged SentencePiece ModelProto, serialized."""
    from sentencepiece import sentencepiece_model_pb2 as pb

    proto = pb.ModelProto()
    proto.ParseFromString(Path(base.sp_model_path).read_bytes())  # type: ignore[arg-type]
    for e in plan.entries:
        piece = proto.pieces.add()
        piece.piece, piece.score, piece.type = e.token, e.score, pb.ModelProto.SentencePiece.NORMAL
    return proto.SerializeToString()


def sentencepiece_tokenizer_json(base: BaseTokenizer, plan: MergePlan) -> dict[str, Any]:
    """The fast (``tokenizers``) form of the merged SentencePiece model, built on the base's own tokenizer.json.

    The base's BPE merges stay as they are (a shipped tokenizer.json may differ from a fresh conversion,
    e.g. Mistral v0.3 on runs of spaces, and the base's behaviour is what must not change). New pieces
    are appended to the vocabulary, and merges are added as SentencePiece would apply them: a pair
    (a, b) merges at the priority of the piece a+b, so a split of a *base* piece that a new piece makes
    possible is inserted at that base piece's rank, and the splits of new pieces are appended in score
    order.
    """
    tj = json.loads(base.hf.backend_tokenizer.to_str())
    model = tj["model"]
    vocab: dict[str, int] = model["vocab"]
    merges = [_merge_pair(m) for m in model["merges"]]
    _append_entries(vocab, plan, max(vocab.values()) + 1)
    new = {e.token for e in plan.entries}
    first_rank: dict[str, int] = {}
    for i, (a, b) in enumerate(merges):
        first_rank.setdefault(a + b, i)
    inserts: dict[int, list[tuple[str, str]]] = {}
    new_chars = {c for t in new for c in t}
    for piece in base.vocab:
        if len(piece) < 2 or not new_chars.intersection(piece):
            continue
        for k in range(1, len(piece)):
            a, b = piece[:k], piece[k:]
            if (a in new or b in new) and a in vocab and b in vocab:
                inserts.setdefault(first_rank.get(piece, len(merges)), []).append((a, b))
    out: list[tuple[str, str]] = []
    for i, pair in enumerate(merges):
        out.append(pair)
        out.extend(inserts.get(i, ()))
    out.extend(inserts.get(len(merges), ()))
    for e in plan.entries:
        out.extend((e.token[:k], e.token[k:]) for k in range(1, len(e.token))
                   if e.token[:k] in vocab and e.token[k:] in vocab)
    model["merges"] = _in_base_format(model["merges"], out)
    return tj


def bytelevel_json(base: BaseTokenizer, plan: MergePlan) -> dict[str, Any]:
    """The merged tokenizer.json (as a dict)."""
    tj = copy.deepcopy(base.tokenizer_json)
    model = tj["model"]  # type: ignore[index]
    vocab: dict[str, int] = model["vocab"]
    for added in tj.get("added_tokens", []):  # type: ignore[union-attr]
        if added["content"] not in vocab:
            vocab[added["content"]] = added["id"]
    first_id = max(max(vocab.values()), *(a["id"] for a in tj.get("added_tokens", []))) + 1  # type: ignore[union-attr]
    _append_entries(vocab, plan, first_id)
    model["merges"].extend(_in_base_format(model["merges"], plan.merges))
    return tj  # type: ignore[return-value]


def _append_entries(vocab: dict[str, int], plan: MergePlan, first_id: int) -> None:
    """Give the plan's entries consecutive ids from ``first_id`` in a tokenizer.json vocabulary."""
    for i, e in enumerate(plan.entries):
        vocab[e.token] = first_id + i


def _in_base_format(base_merges: Sequence[Any], pairs: Iterable[tuple[str, str]]) -> list[Any]:
    """Merges written as the base writes its own: "a b" strings or ["a", "b"] lists."""
    string_format = bool(base_merges) and isinstance(base_merges[0], str)
    return [f"{a} {b}" if string_format else [a, b] for a, b in pairs]


def load_merged(base: BaseTokenizer, plan: MergePlan) -> Any:
    """An encoder for the merged tokenizer: a SentencePieceProcessor or a ``tokenizers.Tokenizer``."""
    if base.kind == "sentencepiece":
        import sentencepiece as spm

        return spm.SentencePieceProcessor(model_proto=sentencepiece_proto(base, plan))
    from tokenizers import Tokenizer

    return Tokenizer.from_str(json.dumps(bytelevel_json(base, plan), ensure_ascii=False))


def emitted_counts(base: BaseTokenizer, plan: MergePlan, texts: Sequence[str]) -> tuple[np.ndarray, int]:
    """How often each appended entry is emitted when ``texts`` are encoded with the merged tokenizer, and
    the total number of tokens."""
    ids = encode_ids(load_merged(base, plan), texts)
    flat = np.concatenate([np.asarray(x, dtype=np.int64) for x in ids if x] or [np.zeros(0, np.int64)])
    return np.bincount(flat, minlength=base.size + len(plan.entries))[base.size:], len(flat)


def encode_ids(encoder: Any, texts: Sequence[str]) -> list[list[int]]:
    """Token ids (no special tokens) of ``texts`` under a merged encoder from :func:`load_merged`."""
    if hasattr(encoder, "encode_batch"):
        return [e.ids for e in encoder.encode_batch(list(texts), add_special_tokens=False)]
    return encoder.encode(list(texts))


def save_merged(base: BaseTokenizer, plan: MergePlan, out_dir: str | Path) -> None:
    """Write the merged tokenizer as a Hugging Face folder (loads with ``AutoTokenizer``)."""
    out_dir = Path(out_dir)
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td) / "merged"
        base.hf.save_pretrained(tmp)
        if base.kind == "sentencepiece":
            (tmp / "tokenizer.model").write_bytes(sentencepiece_proto(base, plan))
            _copy_base_file(base.source, "special_tokens_map.json", tmp)
            tj = sentencepiece_tokenizer_json(base, plan)
        else:
            tj = bytelevel_json(base, plan)
        (tmp / "tokenizer.json").write_text(json.dumps(tj, ensure_ascii=False), encoding="utf-8")
        for stale in ("vocab.json", "merges.txt"):
            (tmp / stale).unlink(missing_ok=True)
        out_dir.mkdir(parents=True, exist_ok=True)  # may already hold a model: only tokenizer files change
        for name in TOKENIZER_FILES:
            (out_dir / name).unlink(missing_ok=True)
        for path in sorted(tmp.iterdir()):
            shutil.copyfile(path, out_dir / path.name)


def _copy_base_file(source: str, name: str, dest: Path) -> None:
    from transformers.utils import cached_file

    try:
        path = cached_file(source, name, _raise_exceptions_for_missing_entries=False)
    except OSError:
        path = None
    if path:
        shutil.copyfile(path, dest / name)
