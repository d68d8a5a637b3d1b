"""Tables from results files: scaled scores, averages of the cells present, empty cells for missing values,
the three formats; the tokenization view's pieces join back to the text."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from transformers import AutoTokenizer

from vocab_expansion.errors import InputError
from vocab_expansion.report.tables import build_table, eval_root, write_table
from vocab_expansion.report.tokenization import render, segments

COLUMNS = [{"group": "Ko", "label": "A", "task": "a"}, {"group": "Ko", "label": "B", "task": "b"},
           {"group": "", "label": "Avg", "average": True},
           {"group": "Eff", "label": "bpb", "value": "intrinsic:languages.ko.bits_per_byte", "digits": 3}]


def _results(tmp_path):
    for cid, a, b, bpb in (("base", 0.5, 0.25, 3.0), ("eeve/stage7", 0.75, None, 1.5)):
        d = tmp_path / cid
        d.mkdir(parents=True)
        (d / "a.json").write_text(json.dumps({"score": a}))
        if b is not None:
            (d / "b.json").write_text(json.dumps({"score": b}))
        (d / "intrinsic.json").write_text(json.dumps({"languages": {"ko": {"bits_per_byte": bpb}}}))
    return tmp_path


def test_cells_averages_and_formats(tmp_path):
    results = _results(tmp_path / "eval")
    df = build_table([("Base", "base"), ("EEVE", "eeve/stage7")], COLUMNS, results, scale=100)
    assert df.loc["Base"].tolist() == [50.0, 25.0, 37.5, 3.0]
    assert df.loc["EEVE", ("Ko", "A")] == 75.0 and pd.isna(df.loc["EEVE", ("Ko", "B")])
    assert df.loc["EEVE", ("", "Avg")] == 75.0  # the mean of the task cells present
    out = {ext: str(tmp_path / f"t.{ext}") for ext in ("md", "csv", "tex")}
    write_table(df, COLUMNS, "Title", "Caption.", 1, out["md"], out["csv"], out["tex"], label="t")
    md = (tmp_path / "t.md").read_text()
    assert "**Title**" in md and "| Base    |   50.0 |" in md and "3.000" in md and md.rstrip().endswith("Caption.")
    csv = pd.read_csv(out["csv"], index_col=0)
    assert list(csv.columns) == ["Ko A", "Ko B", "Avg", "Eff bpb"] and pd.isna(csv.loc["EEVE", "Ko B"])
    tex = (tmp_path / "t.tex").read_text()
    assert "\\label{tab:t}" in tex and "\\multicolumn{2}{c}{Ko}" in tex
    with pytest.raises(InputError, match="no rows"):
        write_table(df.iloc[:0], COLUMNS, "Title", "", 1, out["md"], out["csv"], out["tex"], label="empty")


def test_eval_root_from_the_declared_result_files(tmp_path):
    rows = [("Base", "base"), ("EEVE", "eeve/stage7")]
    results = _results(tmp_path / "eval")
    files = sorted(str(f) for f in results.rglob("*.json"))
    root = eval_root(files, [cid for _, cid in rows])
    assert root == results
    assert build_table(rows, COLUMNS, root).equals(build_table(rows, COLUMNS, results))
    # "sft/base/x.json" fits both "base" and "sft/base": the folder every file fits is the one
    cids = ["base", "sft/base", "eeve/stage3"]
    assert eval_root([f"out/eval/{c}/intrinsic.json" for c in cids], cids) == Path("out/eval")
    assert eval_root([], []) == Path()  # no rows: nothing is read
    with pytest.raises(InputError, match="not all <folder>/<checkpoint>/<file>"):
        eval_root(["a/base/x.json", "b/eeve/stage3/x.json"], ["base", "eeve/stage3"])


EFFICIENCY = [{"group": "Tok", "label": "{target} tokens/word", "value": "intrinsic:languages.{target}.tokens_per_word",
               "optional": True},
              {"group": "Tok", "label": "en tokens/word", "value": "intrinsic:languages.en.tokens_per_word"},
              {"group": "Gen", "label": "{target} chars/s", "value": "generation:target_chars_per_second"},
              {"group": "Tok", "label": "parity ({target}/en)", "value": "intrinsic:parity"}]


def _efficiency_results(root: Path, target: str, tokens_per_word: float | None, parity: float | None) -> Path:
    for cid, scale in (("base", 1.0), ("expanded", 0.5)):
        d = root / cid
        d.mkdir(parents=True)
        tpw = None if tokens_per_word is None else tokens_per_word * scale
        languages = {target: {"tokens_per_word": tpw}, "en": {"tokens_per_word": 1.25}}
        (d / "intrinsic.json").write_text(json.dumps({"languages": languages, "target": target,
                                                      "parity": None if parity is None else parity * scale}))
        (d / "generation.json").write_text(json.dumps({"target_chars_per_second": 10.0, "target": target}))
    return root


def test_columns_follow_the_target_language(tmp_path):
    rows = [("base", "base"), ("expanded", "expanded")]
    df = build_table(rows, EFFICIENCY, _efficiency_results(tmp_path / "ja", "ja", 2.0, 3.0))
    assert list(df.columns) == [("Tok", "ja tokens/word"), ("Tok", "en tokens/word"), ("Gen", "ja chars/s"),
                                ("Tok", "parity (ja/en)")]
    assert df[("Tok", "parity (ja/en)")].tolist() == [3.0, 1.5] and df[("Tok", "ja tokens/word")].tolist() == [2.0, 1.0]
    out = {ext: str(tmp_path / f"ja.{ext}") for ext in ("md", "csv", "tex")}
    write_table(df, EFFICIENCY, "T", "", 2, out["md"], out["csv"], out["tex"])
    assert list(pd.read_csv(out["csv"], index_col=0).columns) == ["Tok ja tokens/word", "Tok en tokens/word",
                                                                 "Gen ja chars/s", "Tok parity (ja/en)"]


def test_optional_columns_without_values_are_left_out(tmp_path):
    rows = [("base", "base"), ("expanded", "expanded")]
    df = build_table(rows, EFFICIENCY, _efficiency_results(tmp_path / "zh", "zh", None, None))
    assert df[("Tok", "zh tokens/word")].isna().all() and df[("Tok", "parity (zh/en)")].isna().all()
    out = {ext: str(tmp_path / f"zh.{ext}") for ext in ("md", "csv", "tex")}
    write_table(df, EFFICIENCY, "T", "", 2, out["md"], out["csv"], out["tex"])
    csv = pd.read_csv(out["csv"], index_col=0)
    # tokens per word (optional) is left out; parity, not optional, stays as empty cells
    assert list(csv.columns) == ["Tok en tokens/word", "Gen zh chars/s", "Tok parity (zh/en)"]
    assert csv["Tok parity (zh/en)"].isna().all()
    md = Path(out["md"]).read_text(encoding="utf-8")
    assert "tokens/word" in md and "zh tokens/word" not in md and "1.25" in md
    # nothing evaluated yet to name the target: the label stays as written, the cells empty
    empty = build_table(rows, EFFICIENCY, tmp_path / "none")
    assert empty.columns[0] == ("Tok", "{target} tokens/word") and empty.isna().all().all()


def test_the_shipped_efficiency_template_keeps_korean_labels(tmp_path):
    import yaml

    template = yaml.safe_load((Path(__file__).parents[2] / "report" / "tables" / "efficiency.yaml").read_text())
    root = tmp_path / "eval"
    for cid in ("base", "expanded"):
        (root / cid).mkdir(parents=True)
        (root / cid / "intrinsic.json").write_text(json.dumps({"target": "ko", "parity": 2.0, "vocab": 10,
                                                               "languages": {"ko": {}, "en": {}}}))
        (root / cid / "generation.json").write_text(json.dumps({"target": "ko"}))
    df = build_table([("base", "base"), ("expanded", "expanded")], template["columns"], root)
    labels = [f"{g} {c}".strip() for g, c in df.columns]
    assert labels == ["Tokenizer vocab", "Tokenizer ko tokens/word", "Tokenizer ko chars/token",
                      "Tokenizer en tokens/word", "Bits per byte ko", "Bits per byte en", "Generation ko chars/s",
                      "Generation tokens/ko char", "Tokenizer ko bytes/token", "Tokenizer parity (ko/en)",
                      "Divergence KL from base (en)"]


def test_tokenization_view(shared, tmp_path):
    base = AutoTokenizer.from_pretrained(shared / "tokenizers" / "gpt2")
    text = "안녕하세요, 오늘은 날씨가 좋네요. The weather is nice."
    assert "".join(s for s, _ in segments(base, text)) == text
    totals = render(base, base, 10**9, {"ko": [text]}, str(tmp_path / "v.html"))
    page = (tmp_path / "v.html").read_text(encoding="utf-8")
    assert totals["base"] == totals["merged"] == len(base(text, add_special_tokens=False)["input_ids"])
    assert 'class="tok new" title' not in page and "<h2>ko</h2>" in page
    render(base, base, 0, {"ko": [text]}, str(tmp_path / "w.html"))  # every id counts as new
    assert (tmp_path / "w.html").read_text(encoding="utf-8").count('class="tok new" title') == totals["merged"]
