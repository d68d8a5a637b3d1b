"""Checksums of every file a finished workflow wrote under results/, and a comparison of two such lists.

A refactor must not change what the workflow writes: run the demo before and after, write both lists and
compare them. Files that hold wall-clock measurements (generation speed, tokens per second, timings in a
training log) differ between any two runs; they are compared with those fields left out, and listed.

    .venv/bin/python bench/output_checksums.py write results/ bench/results/demo_checksums.json
    .venv/bin/python bench/output_checksums.py compare bench/results/demo_checksums.json other.json
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import re
import sys
from pathlib import Path
from typing import Any

# Keys of JSON objects and columns of CSV/TSV files that hold measured time: left out of the checksum.
TIMED_KEYS = {"seconds", "tokens_per_s", "wall_seconds", "elapsed", "chars_per_s", "tokens_per_second",
              "chars_per_second", "target_chars_per_second", "samples_per_s", "time", "duration",
              "total_evaluation_time_seconds", "start_time", "end_time", "date", "generation_s", "prompt_s"}
TIMED_COLUMN = re.compile(r"^Generation \w+ chars/s$")  # the efficiency table's generation speed, any language


def _strip(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k not in TIMED_KEYS}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def _timed_view(path: Path, data: bytes) -> bytes | None:
    """The file's bytes with timed fields removed, or None when it has none."""
    if path.suffix == ".json":
        try:
            obj = json.loads(data)
        except ValueError:
            return None
        stripped = _strip(obj)
        return None if stripped == obj else json.dumps(stripped, sort_keys=True).encode()
    if path.suffix in (".csv", ".tsv"):
        timed = _timed_columns(path)
        if not timed:
            return None
        delim = "\t" if path.suffix == ".tsv" else ","
        rows = list(csv.reader(io.StringIO(data.decode("utf-8", "replace")), delimiter=delim))
        return "\n".join(delim.join(c for i, c in enumerate(r) if i not in timed) for r in rows).encode()
    if path.suffix in (".md", ".tex") and (timed := _timed_columns(path.with_suffix(".csv"))):
        # a table rendered from a CSV with timed columns: the same cells, by position, in every table row
        sep = "|" if path.suffix == ".md" else "&"
        offset = 1 if path.suffix == ".md" else 0  # a Markdown row starts with a separator
        lines = []
        for line in data.decode("utf-8", "replace").splitlines():
            cells = line.split(sep)
            if len(cells) > offset + max(timed):
                line = sep.join(c for i, c in enumerate(cells) if i - offset not in timed)
            lines.append(line)
        return "\n".join(lines).encode()
    return None


def _timed_columns(csv_path: Path) -> set[int]:
    """Positions of the timed columns of a CSV/TSV table (none when it has none or does not exist)."""
    if not csv_path.is_file():
        return set()
    delim = "\t" if csv_path.suffix == ".tsv" else ","
    with csv_path.open(encoding="utf-8", errors="replace", newline="") as fh:
        header = next(csv.reader(fh, delimiter=delim), [])
    return {i for i, h in enumerate(header) if h in TIMED_KEYS or TIMED_COLUMN.match(h)}


def checksums(root: Path) -> dict[str, dict[str, str]]:
    """relative path -> {"sha256": of the bytes, "untimed": of the bytes without timed fields (when any)}."""
    out = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        entry = {"sha256": hashlib.sha256(data).hexdigest()}
        view = _timed_view(path, data)
        if view is not None:
            entry["untimed"] = hashlib.sha256(view).hexdigest()
        out[path.relative_to(root).as_posix()] = entry
    return out


def compare(a: dict[str, dict[str, str]], b: dict[str, dict[str, str]]) -> dict[str, list[str]]:
    """Files only in one list, files that differ, and files equal once their timed fields are left out."""
    both = sorted(set(a) & set(b))
    timed = [f for f in both if a[f]["sha256"] != b[f]["sha256"] and "untimed" in a[f]
             and a[f].get("untimed") == b[f].get("untimed")]
    differ = [f for f in both if a[f]["sha256"] != b[f]["sha256"] and f not in timed]
    return {"only_first": sorted(set(a) - set(b)), "only_second": sorted(set(b) - set(a)), "differ": differ,
            "equal_but_timings": timed, "identical": [f for f in both if a[f]["sha256"] == b[f]["sha256"]]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write", help="checksum every file under a results folder")
    w.add_argument("root", type=Path)
    w.add_argument("out", type=Path)
    c = sub.add_parser("compare", help="compare two checksum lists; exit 1 when a file differs")
    c.add_argument("first", type=Path)
    c.add_argument("second", type=Path)
    a = ap.parse_args(argv)
    if a.cmd == "write":
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(checksums(a.root), indent=1, sort_keys=True) + "\n", encoding="utf-8")
        return 0
    res = compare(json.loads(a.first.read_text()), json.loads(a.second.read_text()))
    for key in ("only_first", "only_second", "differ", "equal_but_timings"):
        for f in res[key]:
            print(f"{key}: {f}")
    print(f"identical: {len(res['identical'])} files; equal but timings: {len(res['equal_but_timings'])}; "
          f"differ: {len(res['differ'])}; only in one: {len(res['only_first']) + len(res['only_second'])}")
    return 1 if res["differ"] or res["only_first"] or res["only_second"] else 0


if __name__ == "__main__":
    sys.exit(main())
