"""What the config's ``language.script`` means as a regex: the one place a script name becomes a pattern.

``language.script`` is a Unicode script name that the ``regex`` module knows (``Hangul``, ``Thai``,
``Devanagari``) or a character class of its own (``[\\p{Han}\\p{Hiragana}\\p{Katakana}]``). Nothing
else in the package writes a language-specific pattern: a language whose "single characters" are not
simply the letters of its script gets one entry in :data:`SINGLE_CHARACTERS`.
"""

from __future__ import annotations

# Script -> the character class of its single characters the top-up may add, where that is not every letter
# of the script. Hangul: the 11,172 precomposed syllables (EEVE tops up syllables), not the script's ~570
# jamo and compatibility letters.
SINGLE_CHARACTERS = {"Hangul": "[가-힣]"}


def script_class(script: str) -> str:
    """A regex character class matching one letter of ``script`` (a script name, or a class kept as is)."""
    return script if script.startswith("[") else rf"\p{{Script={script}}}"


def script_pattern(script: str) -> str:
    """A target token's surface: letters of ``script``, optionally after one space."""
    return rf"^ ?{script_class(script)}+$"


def single_character_pattern(script: str) -> str:
    """One character of ``script`` eligible for the selection's single-character top-up."""
    return f"^{SINGLE_CHARACTERS.get(script, script_class(script))}$"
