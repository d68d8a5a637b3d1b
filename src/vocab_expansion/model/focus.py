"""FOCUS (Dobler & de Melo 2023, EMNLP) for the input rows of new tokens (``model.init.input: focus``).

A new token's row is a sparse convex combination of the rows of base tokens that are *similar in the target
language*: an auxiliary word2vec model (gensim, CBOW as FOCUS's fastText) is trained on the target-language
text tokenized with the merged tokenizer, so that new and base tokens live in one space. Per new token, its
cosine similarities to the overlapping tokens (base tokens that have an auxiliary vector, i.e. occur at least
``min_count`` times in the merged tokenization) go through sparsemax; the new row is the sparsemax-weighted sum
of those tokens' old rows. A token without an auxiliary vector (rarer than ``min_count``) keeps the mean of its
pieces, the ``mean`` init.

The ``deepfocus`` package was not used: it builds fastText from source, pulls numba and fastdist, trains with
every core (not repeatable), caches under the home folder and reads the whole text file into memory. Here the
text is the first ``model.init.focus.max_lines`` lines, written once as token ids to a temporary file that
gensim streams (memory grows with the vocabulary, not the text), and training is seeded on one worker.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vocab_expansion.model.inits import InitContext, InitRows, mean_of_pieces, register

log = logging.getLogger(__name__)

CHUNK = 1024  # new tokens per similarity block: memory CHUNK x overlapping tokens, not new x overlapping


def sparsemax(z: torch.Tensor) -> torch.Tensor:
    """Sparsemax over the last dimension (Martins & Astudillo 2016): the Euclidean projection onto the
    probability simplex, so weights sum to 1 and all but the most similar entries are exactly 0."""
    zs = torch.sort(z, dim=-1, descending=True).values
    k = torch.arange(1, z.shape[-1] + 1, device=z.device, dtype=z.dtype)
    cumsum = zs.cumsum(dim=-1) - 1
    support = (zs * k > cumsum).sum(dim=-1, keepdim=True)  # entries in the support (at least 1: the largest)
    tau = cumsum.gather(-1, support - 1) / support.to(z.dtype)
    return torch.clamp(z - tau, min=0)


def auxiliary_vectors(context: InitContext, knobs: Mapping[str, Any], seed: int) -> dict[int, np.ndarray]:
    """Merged-tokenizer id -> unit-length word2vec vector, for every token that occurs at least ``min_count``
    times in the first ``max_lines`` lines of the text tokenized with the merged tokenizer."""
    from gensim.models import Word2Vec
    from gensim.models.word2vec import LineSentence

    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "ids.txt"
        with open(corpus, "w", encoding="utf-8") as f:  # ids as words: no token string holds a space this way
            for ids in context.encoded_lines(knobs["max_lines"], "focus"):
                f.write(" ".join(map(str, ids)) + "\n")
        # CBOW with 10 negatives, as FOCUS trains fastText; one worker and a seed: the same vectors every run
        model = Word2Vec(LineSentence(str(corpus)), vector_size=knobs["vector_size"], window=knobs["window"],
                         min_count=knobs["min_count"], epochs=knobs["epochs"], sg=0, negative=10, workers=1,
                         seed=seed)
    normed = model.wv.get_normed_vectors()
    return {int(key): normed[i] for i, key in enumerate(model.wv.index_to_key)}


@register("focus", "input", options=("focus",))
def focus(rows: InitRows) -> torch.Tensor:
    """FOCUS rows: sparsemax over auxiliary-space similarities to the overlapping base tokens, the weighted sum
    of their old rows; tokens without an auxiliary vector keep the mean of their pieces."""
    context = rows.need_context("focus")
    seed = int(torch.randint(2**31 - 1, (1,), generator=rows.generator))
    vectors = auxiliary_vectors(context, rows.options["focus"], seed)
    out = mean_of_pieces(rows)
    overlap = sorted(t for t in vectors if t < context.base.size)  # id order: the same sums every run
    have = [j for j, t in enumerate(rows.ids) if t in vectors]
    log.info("focus: %d of %d new tokens have auxiliary vectors, %d overlapping base tokens", len(have),
             len(rows.ids), len(overlap))
    if not have or not overlap:
        log.warning("focus: no auxiliary vectors to combine; every new row is the mean of its pieces")
        return out
    src = rows.old[overlap].float()
    aux = torch.from_numpy(np.stack([vectors[t] for t in overlap])).to(src.device)
    support = 0
    for start in range(0, len(have), CHUNK):
        block = have[start:start + CHUNK]
        new = torch.from_numpy(np.stack([vectors[rows.ids[j]] for j in block])).to(src.device)
        weights = sparsemax(new @ aux.T)
        support += int((weights > 0).sum())
        out[block] = (weights @ src).to(out.dtype)
    log.info("focus: %d rows from a mean of %.1f overlapping tokens each; %d keep the mean of their pieces",
             len(have), support / len(have), len(rows.ids) - len(have))
    return out
