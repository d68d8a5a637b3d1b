"""The target language: everything language-specific the workflow needs, in one config block.

``language:`` names a preset (``presets/<code>.yaml`` here, or a YAML file of your own) and may override
any of its keys. A preset says which Unicode scripts the language is written in (plus extra characters
such as the Japanese long-vowel mark ``ー``, which is Script=Common), how words are counted
(:mod:`.words`), which single characters the tokenizer may top up, which analyser finds proper nouns
(:mod:`.names`), and the default reference and held-out texts. This module is the one place a script
name becomes a regex and the one owner of those defaults: ``corpus.kenlm.reference``,
``tokenizer.eval_texts``, ``eval.texts`` and ``eval.generation.prompts`` left null take the language's.

Config strings reach the code through this module and through functions in the rules, never through
Snakemake's wildcard formatting, so a class such as ``[\\p{Han}{}ー]`` arrives unchanged.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import regex
import yaml

from vocab_expansion import config as configlib
from vocab_expansion.errors import ConfigError

PRESETS_DIR = Path(__file__).parent / "presets"
PRESETS = sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))
KEYS = ("code", "name", "scripts", "extra_chars", "words", "single_characters", "proper_nouns", "reference",
        "texts", "prompts")
PATH_KEYS = ("reference", "texts", "prompts")


@dataclass(frozen=True)
class Language:
    """A resolved ``language:`` block (preset and overrides). Build it with :meth:`from_config`."""

    code: str  # ISO 639 code; names the target side of ``texts``
    name: str  # for titles and logs
    scripts: tuple[str, ...]  # Unicode script names the ``regex`` module knows (Script=...)
    extra_chars: str  # characters of the language outside those scripts (e.g. 'ー', Script=Common)
    words: str  # how words are counted: whitespace | characters | mecab (:mod:`.words`)
    single_characters: str | None  # regex class of the characters the top-up may add; None: every letter
    proper_nouns: str | None  # analyser of the proper-noun curation filter: kiwi | mecab | None (:mod:`.names`)
    reference: tuple[str, ...]  # clean text for the KenLM perplexity filter
    texts: Mapping[str, str]  # held-out parallel text: {code: file, "en": file}, lines aligned
    prompts: str | None  # generation prompts, one a line

    @classmethod
    def from_config(cls, values: Mapping[str, Any] | None, root: str | Path | None = None) -> Language:
        """From a ``language:`` block, resolved through its preset (see :func:`resolve`)."""
        v = resolve(values, root)
        return cls(code=v["code"], name=v["name"], scripts=tuple(v["scripts"]), extra_chars=v["extra_chars"],
                   words=v["words"], single_characters=v["single_characters"], proper_nouns=v["proper_nouns"],
                   reference=tuple(v["reference"]), texts=dict(v["texts"]), prompts=v["prompts"])

    @property
    def letter_class(self) -> str:
        """A regex character class matching one character of the language."""
        return letter_class(self.scripts, self.extra_chars)

    @property
    def token_pattern(self) -> str:
        """A target token's surface: characters of the language, optionally after one space."""
        return rf"^ ?{self.letter_class}+$"

    @property
    def single_character_pattern(self) -> str:
        """One character the selection's single-character top-up may add."""
        return f"^{self.single_characters or self.letter_class}$"


def letter_class(scripts: tuple[str, ...] | list[str], extra_chars: str = "") -> str:
    """``[\\p{Script=A}\\p{Script=B}<extra>]``: the one place script names become a regex."""
    classes = "".join(rf"\p{{Script={s}}}" for s in scripts) + "".join(regex.escape(c) for c in extra_chars)
    return classes if len(scripts) == 1 and not extra_chars else f"[{classes}]"


def load_preset(name_or_path: str) -> dict[str, Any]:
    """A shipped preset by name (``ko``, ``ja``, ...) or a YAML file of your own, checked for every key."""
    path = PRESETS_DIR / f"{name_or_path}.yaml" if name_or_path in PRESETS else Path(name_or_path)
    if not path.is_file():
        raise ConfigError(f"language.preset: {name_or_path!r} is neither a shipped preset ({', '.join(PRESETS)}) "
                          "nor a YAML file")
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"language.preset: {path}: not YAML: {exc}") from exc
    if not isinstance(values, dict):
        raise ConfigError(f"language.preset: {path}: not a mapping of language keys")
    missing = [k for k in KEYS if k not in values]
    if missing:
        raise ConfigError(f"language.preset: {path}: missing {', '.join(missing)}")
    return values


def resolve(values: Mapping[str, Any] | None, root: str | Path | None = None) -> dict[str, Any]:
    """The preset that ``values['preset']`` names, overridden by the other keys of ``values``, validated.

    Paths of a shipped preset are relative to the project root ``root`` (the Snakefile's folder; None: the
    working directory); they stay relative when the working directory is the root.
    """
    block = configlib.section("language", values)
    name = block.pop("preset")
    preset = load_preset(name)
    if name in PRESETS:  # a shipped preset's paths are the project's
        preset = {k: (_project_paths(v, root) if k in PATH_KEYS else v) for k, v in preset.items()}
    merged = configlib.section("language", {**preset, **{k: v for k, v in block.items() if k in (values or {})},
                                            "preset": name})
    for script in merged["scripts"]:
        try:
            regex.compile(rf"\p{{Script={script}}}")
        except regex.error:
            raise ConfigError(f"language.scripts: {script!r} is not a Unicode script name (e.g. Hangul, Han, "
                              f"Hiragana, Katakana, Thai, Devanagari)") from None
    if merged["single_characters"] is not None:
        try:
            regex.compile(merged["single_characters"], regex.V1)
        except regex.error as exc:
            raise ConfigError(f"language.single_characters: {merged['single_characters']!r} is not a valid "
                              f"regex: {exc}") from None
    if merged["texts"] and set(merged["texts"]) != {merged["code"], "en"}:
        raise ConfigError(f"language.texts: give the parallel text as {{{merged['code']}: file, en: file}}, "
                          f"not keys {sorted(merged['texts'])}")
    return merged


def _project_paths(value: Any, root: str | Path | None) -> Any:
    if value is None or root is None:
        return value
    if isinstance(value, list):
        return [_project_paths(v, root) for v in value]
    if isinstance(value, dict):
        return {k: _project_paths(v, root) for k, v in value.items()}
    path = Path(root) / value
    return value if Path(value).resolve() == path.resolve() else str(path)


def apply(config: dict[str, Any], root: str | Path | None = None) -> dict[str, Any]:
    """Resolve ``config['language']`` in place and fill the language's defaults into the keys left null.

    The keys: ``corpus.kenlm.reference`` (the reference text), ``tokenizer.eval_texts`` and ``eval.texts``
    (the parallel held-out text), ``eval.generation.prompts``. A key the run needs that neither the config nor
    the language gives is an error naming both.
    """
    lang = resolve(config.get("language"), root)
    config["language"] = copy.deepcopy(lang)
    fills = [(("corpus", "kenlm", "reference"), lang["reference"] or None),
             (("tokenizer", "eval_texts"), lang["texts"] or None),
             (("eval", "texts"), lang["texts"] or None),
             (("eval", "generation", "prompts"), lang["prompts"])]
    for keys, value in fills:
        node = config
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        if node.get(keys[-1]) is None:
            node[keys[-1]] = copy.deepcopy(value)
    missing = [".".join(keys) for keys, _ in fills[:3] if _get(config, keys) is None]
    if config.get("corpus", {}).get("kenlm", {}).get("model"):
        missing = [m for m in missing if m != "corpus.kenlm.reference"]  # the user's own model needs no reference
    if missing:
        raise ConfigError(f"{', '.join(missing)}: not set, and language {lang['code']!r} (preset "
                          f"{config['language']['preset']!r}) gives no default: set them, or language.reference "
                          "and language.texts ({<code>: file, en: file})")
    return config


def _get(config: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    node: Any = config
    for key in keys:
        node = node.get(key) if isinstance(node, Mapping) else None
    return node


__all__ = ["KEYS", "PRESETS", "Language", "apply", "letter_class", "load_preset", "resolve"]
