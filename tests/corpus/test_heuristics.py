"""Each heuristic filter rejects what it is for, with its own reason, and keeps ordinary Korean prose."""

from __future__ import annotations

import pytest
import yaml

from vocab_expansion.corpus.filters import check
from vocab_expansion.corpus.heuristics import REGISTRY, HeuristicsConfig, LengthFilter, ScriptFilter
from vocab_expansion.errors import ConfigError
from vocab_expansion.language import Language

KO = Language.from_config({"preset": "ko"})


def _filters(language: Language = KO, /, **entries):
    """The heuristic filters from corpus.filters entries (the rest: the schema's defaults)."""
    return HeuristicsConfig.from_config(entries, language).build()


FLT = _filters()


@pytest.mark.parametrize("text", [
    "태어나 처음으로 가슴 아리는 영화였다. 20년 이상 지났지만 생각하면 또 가슴이 아린다.",
    "어린 시절에 봤던 때랑 결혼하고 나서 봤을 때의 느낌은 확실히 다르네요.",
    "1990년 5월 3일에 개봉한 영화인데 지금 봐도 재밌다",
])
def test_ordinary_prose_is_kept_unchanged(text):
    assert check(text, FLT) == (text, None, "")


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
    assert check(text, _filters(length={"min_words": 2}))[1] == reason


def test_numeric_runs_are_stripped_in_strip_mode():
    text = "지하철 노선은 1호선, 2호선, 4호선, 13호선 등이 있고 환승이 편하다"
    out, reason, _ = check(text, FLT)
    assert reason is None
    assert out == "지하철 노선은 등이 있고 환승이 편하다"
    kept, reason, _ = check(text, _filters(numeric={"mode": "reject"}))
    assert (kept, reason) == (text, None)


def test_counting_sequence_is_numeric_dominant():
    assert check(" ".join(str(i) for i in range(86, 121)), FLT)[1] == "numeric_dominant"


def test_other_scripts_by_config():
    thai = _filters(Language.from_config({"preset": "th"}))
    assert check("ภาษาไทยสวยงามและน่าเรียนรู้ มาก", thai)[1] is None
    korean = "한국어 문장은 태국어가 아니다"
    assert check(korean, thai) == (korean, "script_ratio", "Thai ratio 0.000")
    assert check("I am your father, the best movie ever", FLT)[2] == "Hangul ratio 0.000"  # as before presets
    with pytest.raises(ConfigError, match=r"language\.scripts"):
        Language.from_config({"preset": "ko", "scripts": ["NotAScript"]})
    with pytest.raises(ConfigError, match=r"language\.scripts / language\.extra_chars: '\[' is not a valid"):
        ScriptFilter(letters="[", name="Broken", min_ratio=0.5)


def test_rules_can_be_disabled():
    filters = _filters(length={"min_chars": None, "min_words": None}, script={"min_ratio": None},
                       repetition={"max_char_run_frac": None})
    assert check("ㅋㅋㅋㅋㅋ", filters)[1] is None
    with pytest.raises(ConfigError, match=r"corpus\.filters\.numeric\.mode"):
        _filters(numeric={"mode": "maybe"})
    # YAML reads an unquoted `off` as false: both turn the numeric rules off
    for numeric in (yaml.safe_load("mode: off"), {"mode": "off"}):
        assert check("합계 1234567890 !!", _filters(numeric=numeric))[1] != "numeric_dominant"


def test_filters_are_built_from_their_entries_in_registration_order():
    cfg = HeuristicsConfig.from_config({"length": {"min_chars": 3}}, KO)
    assert list(REGISTRY)[:4] == ["numeric", "length", "script", "repetition"]
    built = cfg.build()
    assert [type(f).__name__ for f in built] == ["NumericFilter", "LengthFilter", "ScriptFilter", "RepetitionFilter"]
    # schema defaults; Korean words are runs between spaces
    assert built[1] == LengthFilter(min_chars=3, max_chars=100_000, min_words=1, max_words=None, split=str.split)
    assert isinstance(built[2], ScriptFilter) and built[2].letters == r"\p{Script=Hangul}"  # from the language
    assert built[2].name == "Hangul"
    with pytest.raises(ConfigError, match=r"corpus\.filters: Additional properties .*'lenght'"):
        HeuristicsConfig.from_config({"lenght": {}}, KO)
    with pytest.raises(TypeError, match="must be a Language"):
        HeuristicsConfig.from_config({}, "Hangul")


def test_ngram_sizes_may_be_string_keys():
    by_int = _filters(repetition={"top_ngram_max_frac": {2: 0.1}})
    by_str = _filters(repetition={"top_ngram_max_frac": {"2": 0.1}})
    text = "좋은 영화 좋은 영화 그리고 다른 말들이 조금 더 있다"
    assert check(text, by_int) == check(text, by_str) == (text, "top_ngram_2", "0.381")
