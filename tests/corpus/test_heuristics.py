"""Each heuristic filter rejects what it is for, with its own reason, and keeps ordinary Korean prose."""

from __future__ import annotations

import pytest

from vocab_expansion.corpus.heuristics import HeuristicFilter, HeuristicsConfig
from vocab_expansion.errors import ConfigError

FLT = HeuristicFilter(HeuristicsConfig())


@pytest.mark.parametrize("text", [
    "태어나 처음으로 가슴 아리는 영화였다. 20년 이상 지났지만 생각하면 또 가슴이 아린다.",
    "어린 시절에 봤던 때랑 결혼하고 나서 봤을 때의 느낌은 확실히 다르네요.",
    "1990년 5월 3일에 개봉한 영화인데 지금 봐도 재밌다",
])
def test_ordinary_prose_is_kept_unchanged(text):
    assert FLT.check(text) == (text, None, "")


@pytest.mark.parametrize("text,reason", [
    ("짧다", "too_short"),
    ("띄어쓰기가없는아주긴한단어하나", "too_few_words"),
    ("I am your father, the best movie ever", "script_ratio"),
    ("합계 1234567890 !!", "numeric_dominant"),
    ("010-1234-5678 010-2345-6789 전화", "numeric_dominant"),
    ("정말 재밌어요 정말 재밌어요 정말 재밌어요", "top_ngram_2"),
    ("재밌다 ㅋㅋㅋㅋㅋㅋㅋㅋㅋㅋㅋㅋㅋㅋㅋㅋ", "char_run"),
    ("첫 줄입니다 여기\n반복되는 줄입니다 여기\n반복되는 줄입니다 여기\n반복되는 줄입니다 여기", "dup_lines"),
])
def test_each_rule_has_its_reason(text, reason):
    assert HeuristicFilter(HeuristicsConfig(min_words=2)).check(text)[1] == reason


def test_numeric_runs_are_stripped_in_strip_mode():
    text = "지하철 노선은 1호선, 2호선, 4호선, 13호선 등이 있고 환승이 편하다"
    out, reason, _ = FLT.check(text)
    assert reason is None
    assert out == "지하철 노선은 등이 있고 환승이 편하다"
    kept, reason, _ = HeuristicFilter(HeuristicsConfig(numeric_mode="reject")).check(text)
    assert (kept, reason) == (text, None)


def test_counting_sequence_is_numeric_dominant():
    assert FLT.check(" ".join(str(i) for i in range(86, 121)))[1] == "numeric_dominant"


def test_other_scripts_by_config():
    thai = HeuristicFilter(HeuristicsConfig(script="Thai"))
    assert thai.check("ภาษาไทยเป็นภาษาที่สวยงาม มาก")[1] is None
    assert thai.check("한국어 문장은 태국어가 아니다")[1] == "script_ratio"
    with pytest.raises(ConfigError, match="script"):
        HeuristicFilter(HeuristicsConfig(script="NotAScript"))


def test_rules_can_be_disabled():
    cfg = HeuristicsConfig(min_chars=None, min_words=None, min_script_ratio=None, max_char_run_frac=None)
    assert HeuristicFilter(cfg).check("ㅋㅋㅋㅋㅋ")[1] is None
    with pytest.raises(ConfigError):
        HeuristicsConfig(numeric_mode="maybe")
