"""The demo base the workflow builds itself (no model hub is needed): an English byte-level BPE tokenizer.

Like Llama-3's: byte-level BPE over Llama-3's pre-tokenizer regex, special tokens for the start and end
of text and padding, and a post-processor that adds the start token. Trained on the embedded English
demo text only, so it is English-centric the way the models this workflow expands are.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from vocab_expansion.errors import InputError
from vocab_expansion.fileio import open_text

log = logging.getLogger(__name__)

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                  r"\s*[\r\n]+|\s+(?!\S)|\s+")
BOS, EOS, PAD = "<|begin_of_text|>", "<|end_of_text|>", "<|pad|>"


def _texts(path: str | Path, text_field: str) -> Iterator[str]:
    with open_text(path) as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            obj = json.loads(line)
            if text_field not in obj:
                raise InputError(f"{path}: line {n}: no field {text_field!r}")
            yield obj[text_field]


def train_demo_tokenizer(text_path: str | Path, out_dir: str | Path, vocab_size: int = 8000,
                         text_field: str = "text") -> None:
    """Train the demo tokenizer on a jsonl text file and save it as a Hugging Face folder."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(ignore_merges=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    os.environ.setdefault("RAYON_NUM_THREADS", "1")
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False,
                                  special_tokens=[BOS, EOS, PAD], initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_texts(text_path, text_field), trainer=trainer)
    bos = tok.token_to_id(BOS)
    tok.post_processor = processors.TemplateProcessing(single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B",
                                                       special_tokens=[(BOS, bos)])
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD,
                                 model_max_length=4096, clean_up_tokenization_spaces=False)
    hf.save_pretrained(out_dir)
    log.info("demo tokenizer: %d tokens -> %s", len(hf), out_dir)
