"""The tokenization view: the same sentences segmented by the base and the merged tokenizer, as HTML.

Token boundaries alternate in colour; tokens the expansion added are highlighted; each line shows its
token count, so the gain reads at a glance. Token surfaces come from the fast tokenizer's character
offsets, so the pieces always join back to the sentence.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from vocab_expansion.fileio import atomic_path

STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;max-width:70em}
.tok{padding:1px 0;border-radius:3px;white-space:pre-wrap}
.a{background:#dbe9f6}.b{background:#f6e3cf}
.new{background:#9fe0a8;outline:1px solid #2e8b57}
td{vertical-align:top;padding:4px 8px}td.n{text-align:right;font-variant-numeric:tabular-nums}
th{text-align:left}table{border-collapse:collapse;margin-bottom:1.5em}tr.s td{border-top:1px solid #ccc}
.key span{margin-right:1em}
"""


def segments(tokenizer: Any, text: str) -> list[tuple[str, int]]:
    """(surface text, token id) of each token of ``text``, from the tokenizer's offsets."""
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    out, last = [], 0
    for tid, (start, end) in zip(enc["input_ids"], enc["offset_mapping"], strict=True):
        start = max(start, last)  # byte-level pieces of one character share its offsets
        out.append((text[start:end], tid))
        last = max(last, end)
    return out


def _row(name: str, segs: Sequence[tuple[str, int]], first_new: int | None) -> str:
    spans = []
    for k, (surface, tid) in enumerate(segs):
        cls = "new" if first_new is not None and tid >= first_new else ("a" if k % 2 == 0 else "b")
        spans.append(f'<span class="tok {cls}" title="id {tid}">{html.escape(surface) or "&#8203;"}</span>')
    return f'<td>{html.escape(name)}</td><td class="n">{len(segs)}</td><td>{"".join(spans)}</td>'


def render(base: Any, merged: Any, first_new: int, texts: Mapping[str, Sequence[str]], out: str) -> dict[str, int]:
    """Write the HTML page; return total token counts per tokenizer."""
    totals = {"base": 0, "merged": 0}
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Tokenization</title><style>{STYLE}"
             "</style></head><body><h1>The same sentences, base and merged tokenizer</h1>",
             '<p class="key"><span class="tok a">token</span><span class="tok b">next token</span>'
             '<span class="tok new">token added by the expansion</span> (hover: token id)</p>']
    for lang, lines in texts.items():
        parts.append(f"<h2>{html.escape(lang)}</h2><table><tr><th>tokenizer</th><th>tokens</th><th>segmentation</th></tr>")
        for line in lines:
            b, m = segments(base, line), segments(merged, line)
            totals["base"] += len(b)
            totals["merged"] += len(m)
            parts.append(f'<tr class="s">{_row("base", b, None)}</tr><tr>{_row("merged", m, first_new)}</tr>')
        parts.append("</table>")
    parts.append(f"<p>Tokens in all: base {totals['base']}, merged {totals['merged']}.</p></body></html>")
    with atomic_path(out) as tmp:
        tmp.write_text("\n".join(parts), encoding="utf-8")
    return totals
