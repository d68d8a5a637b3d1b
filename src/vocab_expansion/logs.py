"""Logging set-up for workflow steps: one log file per rule, progress bars included."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")


@contextlib.contextmanager
def log_to(path: str | Path | None, level: int = logging.INFO) -> Iterator[logging.Logger]:
    """Send logging records and stderr (tqdm bars, warnings) to ``path`` for the duration of the block.

    With ``path`` None, records go to stderr. Exceptions are logged before they propagate, so the
    rule's log ends with the reason a step failed.
    """
    root = logging.getLogger()
    old_level, old_handlers, old_stderr = root.level, list(root.handlers), sys.stderr
    stream = open(path, "a", encoding="utf-8", buffering=1) if path else sys.stderr  # noqa: SIM115
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.handlers = [handler]
    root.setLevel(level)
    if path:
        sys.stderr = stream
    try:
        yield logging.getLogger("vocab_expansion")
    except Exception as exc:
        logging.getLogger("vocab_expansion").error("%s: %s", type(exc).__name__, exc)
        raise
    finally:
        root.handlers, sys.stderr = old_handlers, old_stderr
        root.setLevel(old_level)
        if path:
            stream.close()


def progress(iterable: Iterable[T], desc: str, total: int | None = None) -> Iterator[T]:
    """A tqdm progress bar that also writes to rule logs (a line every 30 s at most, and at the end)."""
    return iter(tqdm(iterable, desc=desc, total=total, mininterval=30, miniters=1, unit="doc",
                     dynamic_ncols=False, ncols=100))
