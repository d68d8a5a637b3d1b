"""The two QLoRA merges on the demo: logits of the merge into the dequantized 4-bit weights against the merge
into the original weights.

On a finished demo run, the demo's ``stage7_qlora`` settings train from ``results/models/eeve_qlora/stage6``
(``--steps`` steps, fp32, same seed) twice, once per ``qlora_merge``; the adapters are the same, so the two
folders differ by the merge alone: ``original - dequantized = W - dequant(quant(W))`` for every adapted weight.
Reported: the max and mean absolute logit difference over validation rows, against the max logit, how often
the two agree on the most likely token, and each merged model's loss on those rows. Figures go to
bench/results/qlora_demo.json. Not a test:

    .venv/bin/python bench/qlora_demo.py [--steps 10]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from vocab_expansion import config as configlib  # noqa: E402
from vocab_expansion.training.data import load_data  # noqa: E402
from vocab_expansion.training.run_config import RunConfig  # noqa: E402
from vocab_expansion.training.trainer import train_stage  # noqa: E402
from vocab_expansion.training.variants import Variants  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--rows", type=int, default=16, help="validation rows whose logits are compared")
    a = ap.parse_args()
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(2)
    cfg = configlib.load(str(ROOT / "config.yaml"))
    spec = Variants.from_config(cfg["training"]).specs["stage7_qlora"]
    source = ROOT / "results/models/eeve_qlora/stage6"
    data_dir = ROOT / "results/training/data/expanded"
    batch = load_data(data_dir).batch("val", np.arange(a.rows))
    out: dict = {"source": str(source.relative_to(ROOT)), "stage": spec.name, "steps": a.steps, "rows": a.rows}
    logits = {}
    with tempfile.TemporaryDirectory() as tmp:
        for merge in ("dequantized", "original"):
            s = dataclasses.replace(spec, max_steps=a.steps, eval_every=a.steps, qlora_merge=merge)
            summary = train_stage(source, data_dir, Path(tmp) / merge, s, RunConfig.from_config(None, cfg["seed"]))
            model = AutoModelForCausalLM.from_pretrained(Path(tmp) / merge, dtype=torch.float32).eval()
            with torch.no_grad():
                logits[merge] = model(input_ids=torch.as_tensor(batch["input_ids"]),
                                      position_ids=torch.as_tensor(batch["position_ids"]), use_cache=False).logits
            labels = torch.as_tensor(batch["labels"])[:, 1:]
            out[f"merged_val_loss_{merge}"] = float(torch.nn.functional.cross_entropy(
                logits[merge][:, :-1].reshape(-1, logits[merge].shape[-1]), labels.reshape(-1), ignore_index=-100))
            out[f"adapter_val_loss_{merge}"] = summary["best_val_loss"]  # the trained adapter model (same in both)
    diff = (logits["original"] - logits["dequantized"]).abs()
    out.update(max_abs_logit_diff=float(diff.max()), mean_abs_logit_diff=float(diff.mean()),
               max_abs_logit=float(logits["dequantized"].abs().max()),
               argmax_agreement=float((logits["original"].argmax(-1) == logits["dequantized"].argmax(-1))
                                      .float().mean()))
    path = ROOT / "bench/results/qlora_demo.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
