"""Small file helpers shared by every step: atomic writes, compressed text, deterministic JSON."""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import json
import lzma
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

_OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open, ".lzma": lzma.open}


def compression_suffix(path: str | Path) -> str:
    """The compression suffix of ``path`` ('.gz', '.bz2', '.xz', '.lzma') or ''."""
    suffix = Path(path).suffix.lower()
    return suffix if suffix in _OPENERS else ""


def data_suffix(path: str | Path) -> str:
    """The format suffix of ``path`` under any compression suffix: ``a.jsonl.gz`` -> '.jsonl'."""
    p = Path(path)
    if compression_suffix(p):
        p = p.with_suffix("")
    return p.suffix.lower()


def open_binary(path: str | Path) -> IO[bytes]:
    """Open ``path`` for binary reading, decompressing .gz/.bz2/.xz transparently."""
    opener = _OPENERS.get(compression_suffix(path))
    return opener(path, "rb") if opener else open(path, "rb")


def open_text(path: str | Path, errors: str = "strict") -> IO[str]:
    """Open ``path`` as UTF-8 text, decompressing transparently."""
    return io.TextIOWrapper(open_binary(path), encoding="utf-8", errors=errors, newline="")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as sorted, indented JSON atomically (same object -> same bytes)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def read_json(path: str | Path) -> Any:
    """Read a JSON file."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def jsonl_texts(path: str | Path, field: str) -> Iterator[tuple[int, str]]:
    """(line number, text) of each non-empty JSON line of ``path``; an error names the file, line and field."""
    from vocab_expansion.errors import InputError

    with open_text(path) as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            obj = json.loads(line)
            if field not in obj:
                raise InputError(f"{path}: line {n}: no field {field!r}")
            yield n, obj[field]
