"""Every shipped language preset through the corpus and tokenizer stages of the real workflow.

Each run is the Snakefile on a small clean sample of the language: Korean news and Japanese Wikipedia from
../shared/data, and for Chinese, Thai and Hindi a few hundred sentences this module writes (templates over
small word lists: clean, varied text; what matters here is that the language layer handles the script, not
the prose). The base is GPT-2's real byte-level tokenizer from ../shared/data (the tokenizer steps need no
weights). Every document must be accounted for (in = kept + rejected, per step), no rejection reason may
take more than half of clean text, and the merged tokenizer must add tokens written in the language.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pandas as pd
import pytest
import regex
import yaml
from transformers import AutoTokenizer

from tests.conftest import ROOT, write_jsonl
from tests.workflow import snakemake, write_config
from vocab_expansion.language import PRESETS, Language

pytestmark = pytest.mark.slow

WORDS = {  # times, subjects, places, verbs, objects, sentence end: one of each, in the language's order
    "zh": (["今天", "昨天", "明天", "每天早上", "去年夏天", "周末", "晚上", "上个月", "春节前", "下午三点", "最近",
            "小时候", "那年冬天", "刚才", "后来"],
           ["我", "你", "他", "她", "我们", "老师", "学生", "朋友", "医生", "孩子们", "邻居", "妈妈", "爷爷",
            "同事", "校长", "记者", "司机", "作家"],
           ["在家里", "在图书馆", "在公园里", "在火车上", "在学校", "在北京", "在上海的饭店", "在河边", "在办公室",
            "在山上", "在医院", "在市场", "在电影院", "在海边"],
           ["喜欢", "看见了", "需要", "想起", "买了", "写了", "读了", "想要", "参观了", "讨论了", "修好了",
            "借了", "画了", "打扫了", "准备了", "发现了"],
           ["一本旧书", "新电脑", "一张地图", "中国菜", "那部电影", "春天的花", "一杯热茶", "历史课的作业",
            "音乐会的票", "一封长信", "红色的自行车", "奶奶的照片", "一首古诗", "明天的计划", "两只小猫"], "。"),
    "th": (["วันนี้", "เมื่อวาน", "พรุ่งนี้", "ทุกเช้า", "ปีที่แล้ว", "สุดสัปดาห์", "ตอนเย็น", "เดือนก่อน",
            "ตอนบ่าย", "เมื่อคืน", "บางครั้ง", "ช่วงปิดเทอม", "ก่อนสงกรานต์"],
           ["ฉัน", "คุณ", "เขา", "เรา", "ครู", "นักเรียน", "เพื่อน", "หมอ", "เด็ก", "เพื่อนบ้าน", "แม่", "ปู่",
            "พนักงาน", "นักข่าว", "คนขับรถ", "นักเขียน"],
           ["ที่บ้าน", "ที่ห้องสมุด", "ในสวน", "บนรถไฟ", "ที่โรงเรียน", "ในกรุงเทพ", "ที่ร้านอาหาร", "ริมแม่น้ำ",
            "ที่ทำงาน", "บนภูเขา", "ที่โรงพยาบาล", "ในตลาด", "ที่ชายหาด"],
           ["ชอบ", "เห็น", "ต้องการ", "นึกถึง", "ซื้อ", "เขียน", "อ่าน", "อยากได้", "ซ่อม", "ยืม", "วาด",
            "ทำความสะอาด", "เตรียม", "ค้นพบ"],
           ["หนังสือเก่า", "คอมพิวเตอร์ใหม่", "แผนที่", "อาหารไทย", "ภาพยนตร์เรื่องนั้น", "ดอกไม้", "ชาร้อน",
            "การบ้านวิชาประวัติศาสตร์", "ตั๋วคอนเสิร์ต", "จดหมายยาว", "จักรยานสีแดง", "รูปของยาย", "บทกวีโบราณ",
            "แผนของวันพรุ่งนี้", "ลูกแมวสองตัว"], " "),
    "hi": (["आज", "कल", "हर सुबह", "पिछले साल", "सप्ताहांत में", "शाम को", "पिछले महीने", "अक्सर", "दोपहर में",
            "कल रात", "कभी कभी", "छुट्टियों में", "दिवाली से पहले"],
           ["मैं", "तुम", "वह", "हम", "शिक्षक", "छात्र", "मेरा दोस्त", "डॉक्टर", "बच्चे", "पड़ोसी", "माँ", "दादा जी",
            "कर्मचारी", "पत्रकार", "ड्राइवर", "लेखक"],
           ["घर पर", "पुस्तकालय में", "बगीचे में", "ट्रेन में", "स्कूल में", "दिल्ली में", "रेस्तरां में",
            "नदी के किनारे", "दफ़्तर में", "पहाड़ पर", "अस्पताल में", "बाज़ार में", "समुद्र तट पर"],
           ["देखते हैं", "पसंद करते हैं", "चाहते हैं", "याद करते हैं", "खरीदते हैं", "पढ़ते हैं", "लिखते हैं",
            "ठीक करते हैं", "उधार लेते हैं", "बनाते हैं", "साफ़ करते हैं", "तैयार करते हैं", "खोजते हैं"],
           ["पुरानी किताब", "नया कंप्यूटर", "नक्शा", "भारतीय खाना", "वह फ़िल्म", "फूल", "गरम चाय",
            "इतिहास का गृहकार्य", "संगीत समारोह के टिकट", "लंबी चिट्ठी", "लाल साइकिल", "दादी की तस्वीर",
            "पुरानी कविता", "कल की योजना", "दो बिल्ली के बच्चे"], "। "),
}


def _sentences(code: str, n: int, seed: int) -> list[str]:
    times, subjects, places, verbs, objects, end = WORDS[code]
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        t, s, p, v, o = (rng.choice(x) for x in (times, subjects, places, verbs, objects))
        out.append(f"{t}{s}{p}{v}{o}{end}" if code == "zh" else f"{t}{s}{p}{v}{o}" if code == "th"
                   else f"{t} {s} {p} {o} {v}{end}")
    return out


def _written_corpus(code: str) -> tuple[list[str], list[str], list[str]]:
    """Documents of 3-6 sentences, a reference text and an eval text, all from the templates."""
    rng = random.Random(1)
    joiner = WORDS[code][5] if code == "th" else ""
    docs = [joiner.join(_sentences(code, rng.randint(3, 6), seed=i)).strip() for i in range(400)]
    return docs, _sentences(code, 600, seed=10_001), _sentences(code, 200, seed=10_002)


def _shared_corpus(code: str, shared: Path) -> tuple[list[str], list[str], list[str]]:
    if code == "ko":  # clean news; the everyday JHE sentences as the reference
        news = (shared / "parallel" / "koen_news_dev.ko").read_text(encoding="utf-8").splitlines()
        docs = [" ".join(news[i:i + 3]) for i in range(0, 900, 3)]
        return docs, (shared / "parallel" / "jhe_dev.ko").read_text(encoding="utf-8").splitlines(), news[900:]
    lines = (shared / "japanese" / "wikipedia_docs.jsonl").read_text(encoding="utf-8").splitlines()
    texts = [json.loads(line)["text"] for line in lines]
    reference = [s for t in texts[1200:1700] for s in regex.split(r"(?<=。)", t) if s.strip()]
    news = (shared / "parallel" / "ja_news_dev.ja").read_text(encoding="utf-8").splitlines()
    return texts[:1200], reference, news[:200]


@pytest.fixture(scope="module", params=PRESETS)
def preset_run(request, shared, tmp_path_factory):
    """The corpus and tokenizer stages of one preset, finished; its folder, config and input count."""
    code = request.param
    workdir = tmp_path_factory.mktemp(f"lang_{code}")
    docs, reference, held_out = (_shared_corpus(code, shared) if code in ("ko", "ja")
                                 else _written_corpus(code))
    write_jsonl(workdir / "corpus.jsonl", [{"id": f"{code}-{i}", "text": t} for i, t in enumerate(docs)])
    (workdir / "reference.txt").write_text("\n".join(reference) + "\n", encoding="utf-8")
    (workdir / "held_out.txt").write_text("\n".join(held_out) + "\n", encoding="utf-8")
    config = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    config["language"] = {"preset": code, "reference": ["reference.txt"],
                          "texts": {code: "held_out.txt", "en": str(shared / "parallel" / "koen_news_dev.en")}}
    config["corpus"]["sources"] = [{"name": code, "path": "corpus.jsonl", "text_field": "text", "id_field": "id"}]
    config["corpus"]["shard_docs"] = 1000
    config["base_model"] = str(shared / "tokenizers" / "gpt2")
    config["tokenizer"]["intermediate_vocab"] = 2000
    for key in ("deny", "allow"):
        config["tokenizer"]["curation"][key] = str(ROOT / config["tokenizer"]["curation"][key])
    write_config(workdir, config)
    snakemake(workdir, "results/corpus/summary.tsv", "results/tokenizer/merged",
              "results/tokenizer/report/summary.json", "-q")
    return code, workdir, len(docs)


def test_every_document_is_kept_or_rejected_once(preset_run):
    code, workdir, n_docs = preset_run
    stats = pd.read_csv(workdir / "results/corpus/stats.tsv", sep="\t", keep_default_na=False)
    for step, s in stats.groupby("step"):
        got = {m: int(s[s.measure == m].docs.sum()) for m in ("in", "kept", "rejected")}
        assert got["in"] == got["kept"] + got["rejected"], (code, step, got)
    ingested = stats[(stats.step == "ingest") & (stats.measure == "in")].docs.sum()
    assert ingested == n_docs, code


def test_no_rejection_reason_takes_half_of_clean_text(preset_run):
    code, workdir, n_docs = preset_run
    summary = pd.read_csv(workdir / "results/corpus/summary.tsv", sep="\t", keep_default_na=False)
    rejected = summary[summary.measure == "rejected"]
    worst = rejected.sort_values("docs").tail(1)
    assert rejected.docs.max() <= n_docs / 2 if len(rejected) else True, (code, worst.to_dict("records"))
    kept = int(summary[(summary.step == "dedup") & (summary.measure == "kept")].docs.iloc[0])
    assert kept >= n_docs / 2, (code, kept)


def test_new_tokens_are_written_in_the_language(preset_run):
    code, workdir, _ = preset_run
    lang = Language.from_config({"preset": code})
    new = pd.read_csv(workdir / "results/tokenizer/new_tokens.tsv", sep="\t", keep_default_na=False, quoting=3)
    kept = new[new.decision == "kept"]  # not the intermediate tokens the merge added to reach them
    surfaces = [t.replace("\u2581", " ") for t in kept.token]  # '▁' marks a leading space
    assert len(surfaces) > 20, code
    pattern = regex.compile(lang.token_pattern)
    assert all(pattern.match(s) for s in surfaces), [s for s in surfaces if not pattern.match(s)][:10]
    tok = AutoTokenizer.from_pretrained(workdir / "results/tokenizer/merged")
    held_out = (workdir / "held_out.txt").read_text(encoding="utf-8").splitlines()[0]
    assert tok.decode(tok.encode(held_out, add_special_tokens=False)) == held_out
