"""What a checkpoint folder carries about its history: ``lineage.json``.

* ``old_vocab``: the number of base-tokenizer ids (rows from here on are new tokens),
* ``new_blocks``: indices of blocks a LLaMA-Pro expansion inserted,
* ``stages``: one summary per stage trained so far.

An expanded model has ``expansion.json`` (written by the expansion) instead; a plain base model has
neither, and all its rows are old.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

LINEAGE = "lineage.json"


def read_lineage(model_dir: str | Path, vocab_rows: int) -> dict[str, Any]:
    """The lineage of a checkpoint folder (defaults for a base or freshly expanded model)."""
    path = Path(model_dir)
    if (path / LINEAGE).exists():
        return json.loads((path / LINEAGE).read_text())
    if (path / "expansion.json").exists():
        info = json.loads((path / "expansion.json").read_text())
        return {"old_vocab": int(info["old_vocab"]), "new_blocks": [], "stages": []}
    return {"old_vocab": int(vocab_rows), "new_blocks": [], "stages": []}
