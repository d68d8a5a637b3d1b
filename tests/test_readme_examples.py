"""The README's "Extending" examples are the code the tests run: every code block of that section appears,
as written, in the test or module that exercises it."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _blocks() -> list[tuple[str, str]]:
    readme = ROOT.joinpath("README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Extending\n", 1)[1].split("\n## ", 1)[0]
    return [(lang, textwrap.dedent(body)) for lang, body in re.findall(r"```(\w+)\n(.*?)```", section, re.S)]


# each block, by its first line, and the file that runs it
EXERCISED_IN = {
    '@register("sentence_ends")': "tests/corpus/toy_filter.py",
    "sentence_ends:": "tests/corpus/toy_filter.py",
    '@register("zeros", "output")': "tests/model/test_inits.py",
    "task: toy_qa_local": "tests/eval/test_extending.py",
}


def _first(body: str) -> str:
    return body.splitlines()[0].split("  #")[0]


def _normalized(text: str) -> str:
    """Lines stripped of indentation and of the escaping a Python string literal adds."""
    return "\n".join(line.strip() for line in text.replace("\\\\n", "\\n").splitlines() if line.strip())


def test_every_block_of_extending_is_known():
    firsts = [_first(body) for _, body in _blocks()]
    assert sorted(firsts) == sorted(EXERCISED_IN), firsts


@pytest.mark.parametrize("first", sorted(EXERCISED_IN))
def test_extending_block_is_the_tested_code(first):
    body = next(b for _, b in _blocks() if _first(b) == first)
    source = ROOT.joinpath(EXERCISED_IN[first]).read_text(encoding="utf-8")
    assert _normalized(body) in _normalized(source), f"README block {first!r} differs from {EXERCISED_IN[first]}"
