"""Intrinsic metrics of a checkpoint: bits per byte, tokenizer efficiency and generation speed.

* Bits per byte on held-out text per language (the parallel news: the same content in Korean and
  English), which compares models with different vocabularies where per-token perplexity does not.
* Tokens per word, characters per token and bytes per token of the checkpoint's own tokenizer on the
  same text.
* Generation: greedy decoding of a fixed number of new tokens from a fixed prompt set; the target
  script's characters per second and tokens per target-script character. Texts are deterministic;
  the timings are measurements and go to their own file.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import regex

from vocab_expansion import config as configlib
from vocab_expansion.errors import InputError
from vocab_expansion.eval.bpb import text_nll
from vocab_expansion.fileio import open_text, write_json
from vocab_expansion.tokenizer.metrics import efficiency, hf_encoder
from vocab_expansion.tokenizer.scripts import script_class

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IntrinsicConfig:
    """Knobs of the intrinsic metrics: eval.texts, eval.max_lines, eval.max_length, eval.generation,
    language.script and the seed. Build it with :meth:`from_config`."""

    texts: Mapping[str, str]  # language -> held-out text file
    max_lines: int | None
    max_length: int
    prompts: str | None  # a file of one prompt a line; None: no generation figures
    max_new_tokens: int
    repeats: int
    script: str
    seed: int

    @classmethod
    def from_config(cls, eval_section: Mapping[str, Any] | None, *, script: str, seed: int) -> IntrinsicConfig:
        """From the eval section, or the part of it with these keys (defaults filled from the schema),
        language.script and the seed."""
        ev = configlib.section("eval", eval_section)
        g = ev["generation"]
        return cls(texts=ev["texts"], max_lines=ev["max_lines"], max_length=ev["max_length"], prompts=g["prompts"],
                   max_new_tokens=g["max_new_tokens"], repeats=g["repeats"], script=script, seed=seed)


def read_lines(path: str | Path, limit: int | None = None) -> list[str]:
    """Non-empty stripped lines of a (possibly compressed) text file, the first ``limit`` of them."""
    out: list[str] = []
    with open_text(path) as fh:
        for line in fh:
            if line.strip():
                out.append(line.strip())
                if limit and len(out) >= limit:
                    break
    if not out:
        raise InputError(f"{path}: no text lines")
    return out


def load_model(model_dir: str, device: str | None = None) -> tuple[Any, Any]:
    """A checkpoint (eval mode, float32 on CPU) and its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    tok = AutoTokenizer.from_pretrained(model_dir)
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(device).eval()
    return model, tok


def language_metrics(model: Any, tok: Any, texts: Mapping[str, Sequence[str]], max_length: int,
                     batch_size: int = 8) -> dict[str, dict[str, float]]:
    """Per language: bits per byte (and nats per token) of the model, efficiency of its tokenizer."""
    out = {}
    for lang, lines in texts.items():
        nll = text_nll(model, tok, lines, max_length=max_length, batch_size=batch_size)
        out[lang] = {**efficiency(hf_encoder(tok), lines), "bits_per_byte": nll["bits_per_byte"],
                     "nats_per_token": nll["nats_per_token"], "lines": len(lines)}
        log.info("%s: %.4f bits per byte, %.3f tokens per word", lang, nll["bits_per_byte"],
                 out[lang]["tokens_per_word"])
    return out


def generation_speed(model: Any, tok: Any, prompts: Sequence[str], max_new_tokens: int, script: str,
                     repeats: int) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """Greedy generation from each prompt: speed figures and the generated texts.

    ``script`` is a Unicode script name (``Hangul``) or a regex character class; a "target character" is
    one that matches it. The best of ``repeats`` timings of the whole prompt set is reported.
    """
    import torch

    pattern = regex.compile(script_class(script))
    device = next(model.parameters()).device
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    samples: list[dict[str, str]] = []
    new_tokens = target_chars = chars = 0
    best = float("inf")
    for r in range(max(repeats, 1)):
        seconds = 0.0
        for prompt in prompts:
            enc = tok(prompt, return_tensors="pt").to(device)
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            with torch.no_grad():
                ids = model.generate(**enc, do_sample=False, max_new_tokens=max_new_tokens,
                                     min_new_tokens=max_new_tokens, pad_token_id=pad)
            if device.type == "cuda":
                torch.cuda.synchronize()
            seconds += time.perf_counter() - t0
            if r == 0:
                gen = ids[0, enc["input_ids"].shape[1]:]
                text = tok.decode(gen, skip_special_tokens=True)
                samples.append({"prompt": prompt, "output": text})
                new_tokens += int(gen.numel())
                chars += len(text)
                target_chars += len(pattern.findall(text))
        best = min(best, seconds)
    speed = {"prompts": len(prompts), "max_new_tokens": max_new_tokens, "new_tokens": new_tokens,
             "chars": chars, "target_chars": target_chars, "seconds": best,
             "tokens_per_second": new_tokens / best, "chars_per_second": chars / best,
             "target_chars_per_second": target_chars / best,
             "tokens_per_target_char": new_tokens / target_chars if target_chars else None,
             "device": str(device), "threads": torch.get_num_threads()}
    return speed, samples


def run_intrinsic(model_dir: str, cfg: IntrinsicConfig, out_metrics: str, out_speed: str, out_samples: str, *,
                  checkpoint: str = "") -> dict[str, Any]:
    """Score ``model_dir`` on the held-out ``cfg.texts`` (language -> file) and time generation from
    ``cfg.prompts``; ``checkpoint`` labels the records."""
    import torch

    torch.manual_seed(cfg.seed)
    model, tok = load_model(model_dir)
    max_length = cfg.max_length
    window = min(max_length, int(getattr(model.config, "max_position_embeddings", max_length) or max_length))
    lines = {lang: read_lines(path, cfg.max_lines) for lang, path in cfg.texts.items()}
    metrics = {"checkpoint": checkpoint, "vocab": len(tok), "window": window,
               "languages": language_metrics(model, tok, lines, window)}
    write_json(out_metrics, metrics)
    speed: dict[str, Any] = {}
    samples: list[dict[str, str]] = []
    if cfg.prompts:
        speed, samples = generation_speed(model, tok, read_lines(cfg.prompts), cfg.max_new_tokens, cfg.script,
                                          cfg.repeats)
        log.info("%s: %.1f target characters/s, %s tokens per target character", checkpoint,
                 speed["target_chars_per_second"], speed["tokens_per_target_char"])
    write_json(out_speed, {"checkpoint": checkpoint, **speed})
    write_json(out_samples, {"checkpoint": checkpoint, "samples": samples})
    return {"metrics": metrics, "speed": speed}
