"""The demo base the workflow builds itself (no model hub is needed): an English byte-level BPE tokenizer.

Like Llama-3's: byte-level BPE over Llama-3's pre-tokenizer regex, special tokens for the start and end
of text and padding, and a post-processor that adds the start token. Trained on the embedded English
demo text only, so it is English-centric the way the models this workflow expands are.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

from vocab_expansion.errors import InputError
from vocab_expansion.fileio import jsonl_texts

log = logging.getLogger(__name__)

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                  r"\s*[\r\n]+|\s+(?!\S)|\s+")
BOS, EOS, PAD = "<|begin_of_text|>", "<|end_of_text|>", "<|pad|>"


def _texts(path: str | Path, text_field: str) -> Iterator[str]:
    return (text for _, text in jsonl_texts(path, text_field))


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


def build_demo_model(tokenizer_dir: str | Path, text_path: str | Path, out_dir: str | Path, *, text_field: str = "text",
                     hidden_size: int = 128, layers: int = 4, heads: int = 4, intermediate_size: int = 384,
                     seq_len: int = 128, batch_size: int = 16, steps: int = 300, lr: float = 3e-3,
                     seed: int = 0) -> dict[str, float]:
    """A small ``LlamaForCausalLM`` (untied embeddings) pretrained for ``steps`` CPU steps on the English text.

    The tokenizer in ``tokenizer_dir`` is saved next to the model, so ``out_dir`` is a complete Hugging
    Face checkpoint. Returns the first and last training losses.
    """
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    ids: list[int] = []
    for text in _texts(text_path, text_field):
        ids.extend(tok(text, add_special_tokens=False)["input_ids"] + [tok.eos_token_id])
    n_seq = len(ids) // seq_len
    if n_seq < batch_size:
        raise InputError(f"{text_path}: too little text for the demo model ({len(ids)} tokens)")
    data = torch.tensor(ids[: n_seq * seq_len]).view(n_seq, seq_len)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=hidden_size, num_hidden_layers=layers,
                         num_attention_heads=heads, num_key_value_heads=heads, intermediate_size=intermediate_size,
                         max_position_embeddings=seq_len * 8, tie_word_embeddings=False,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    model = LlamaForCausalLM(config)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    losses = []
    for step in range(steps):
        batch = data[torch.randint(0, n_seq, (batch_size,), generator=gen)]
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(float(loss))
        if step % 50 == 0 or step == steps - 1:
            log.info("demo model step %d/%d loss %.3f", step + 1, steps, losses[-1])
    model.eval()
    model.save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    return {"first_loss": losses[0], "last_loss": losses[-1], "parameters": sum(p.numel() for p in model.parameters())}
