"""The demo base the workflow builds itself (no model hub is needed): an English byte-level BPE tokenizer.

Like Llama-3's: byte-level BPE over Llama-3's pre-tokenizer regex, special tokens for the start and end
of text and padding, and a post-processor that adds the start token. Trained on the embedded English
demo text only, so it is English-centric the way the models this workflow expands are.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vocab_expansion import config as configlib
from vocab_expansion.errors import InputError
from vocab_expansion.fileio import jsonl_texts

log = logging.getLogger(__name__)

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                  r"\s*[\r\n]+|\s+(?!\S)|\s+")
BOS, EOS, PAD = "<|begin_of_text|>", "<|end_of_text|>", "<|pad|>"


@dataclass(frozen=True)
class DemoBaseConfig:
    """Knobs of the demo base (config: demo_base) and the seed. Build it with :meth:`from_config`."""

    text: str  # English jsonl the tokenizer and the model are trained on
    text_field: str
    vocab_size: int
    hidden_size: int
    layers: int
    heads: int
    intermediate_size: int
    seq_len: int
    batch_size: int
    steps: int
    lr: float
    seed: int

    @classmethod
    def from_config(cls, demo_base: Mapping[str, Any] | None, *, seed: int) -> DemoBaseConfig:
        """From the demo_base section (defaults filled from the schema) and the seed."""
        return cls(**configlib.section("demo_base", demo_base), seed=seed)


def build_demo_base(out_dir: str | Path, cfg: DemoBaseConfig) -> dict[str, float]:
    """The whole demo base in ``out_dir``: its tokenizer, then the model trained with it, both on ``cfg.text``."""
    train_demo_tokenizer(out_dir, cfg)
    return build_demo_model(out_dir, out_dir, cfg)


def _texts(path: str | Path, text_field: str) -> Iterator[str]:
    return (text for _, text in jsonl_texts(path, text_field))


def train_demo_tokenizer(out_dir: str | Path, cfg: DemoBaseConfig) -> None:
    """Train the demo tokenizer (``cfg.vocab_size`` tokens) on ``cfg.text``; save it as a Hugging Face folder."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(ignore_merges=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    os.environ.setdefault("RAYON_NUM_THREADS", "1")
    trainer = trainers.BpeTrainer(vocab_size=cfg.vocab_size, min_frequency=2, show_progress=False,
                                  special_tokens=[BOS, EOS, PAD], initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_texts(cfg.text, cfg.text_field), trainer=trainer)
    bos = tok.token_to_id(BOS)
    tok.post_processor = processors.TemplateProcessing(single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B",
                                                       special_tokens=[(BOS, bos)])
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD,
                                 model_max_length=4096, clean_up_tokenization_spaces=False)
    hf.save_pretrained(out_dir)
    log.info("demo tokenizer: %d tokens -> %s", len(hf), out_dir)


def build_demo_model(tokenizer_dir: str | Path, out_dir: str | Path, cfg: DemoBaseConfig) -> dict[str, float]:
    """A small ``LlamaForCausalLM`` (untied embeddings) pretrained for ``cfg.steps`` CPU steps on ``cfg.text``.

    The tokenizer in ``tokenizer_dir`` is saved next to the model, so ``out_dir`` is a complete Hugging
    Face checkpoint. Returns the first and last training losses.
    """
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(cfg.seed)
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    ids: list[int] = []
    for text in _texts(cfg.text, cfg.text_field):
        ids.extend(tok(text, add_special_tokens=False)["input_ids"] + [tok.eos_token_id])
    n_seq = len(ids) // cfg.seq_len
    if n_seq < cfg.batch_size:
        raise InputError(f"{cfg.text}: too little text for the demo model ({len(ids)} tokens)")
    data = torch.tensor(ids[: n_seq * cfg.seq_len]).view(n_seq, cfg.seq_len)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=cfg.hidden_size, num_hidden_layers=cfg.layers,
                         num_attention_heads=cfg.heads, num_key_value_heads=cfg.heads,
                         intermediate_size=cfg.intermediate_size,
                         max_position_embeddings=cfg.seq_len * 8, tie_word_embeddings=False,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    model = LlamaForCausalLM(config)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.steps, pct_start=0.1)
    gen = torch.Generator().manual_seed(cfg.seed)
    model.train()
    losses = []
    for step in range(cfg.steps):
        batch = data[torch.randint(0, n_seq, (cfg.batch_size,), generator=gen)]
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(float(loss))
        if step % 50 == 0 or step == cfg.steps - 1:
            log.info("demo model step %d/%d loss %.3f", step + 1, cfg.steps, losses[-1])
    model.eval()
    model.save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    return {"first_loss": losses[0], "last_loss": losses[-1], "parameters": sum(p.numel() for p in model.parameters())}
