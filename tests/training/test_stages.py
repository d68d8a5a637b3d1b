"""The seven EEVE stages on tiny random models of every seed family: each stage moves exactly what it trains.

Every frozen tensor and row is bit-identical after the stage (weight decay is on, so a row that only had a
zero gradient would still move), and every trained tensor changed. For tied embeddings (Qwen2 here) the
input and output rows are one matrix, so a stage trains the union of what it asks for either side.
"""

from __future__ import annotations

import csv
import dataclasses
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from tests.families import FAMILIES
from tests.training.conftest import run_config, stage_spec
from vocab_expansion.training.data import step_rows
from vocab_expansion.training.pack import open_split
from vocab_expansion.training.stages import StageSpec
from vocab_expansion.training.trainer import stage_seed, train_stage

# stage -> (input rows, lm_head rows, transformer body), written out independently of the trainer's groups
EEVE = {
    1: (("embed_new",), "new", None, False),
    2: (("head_new",), None, "new", False),
    3: (("embed_new", "head_new"), "new", "new", False),
    4: (("head_all",), None, "all", False),
    5: (("embed_new", "head_all"), "new", "all", False),
    6: (("all",), "all", "all", True),
    7: (("layers",), None, None, True),
}
RANK = {None: 0, "new": 1, "all": 2}


def _spec(name: str, train: tuple[str, ...], **kw) -> StageSpec:
    base = {"lr": 5e-2, "weight_decay": 0.1, "max_steps": 3, "eval_every": 3, "save_every": 3, "batch_size": 4,
            "micro_batch_size": 2, "schedule": "constant"}
    return stage_spec(name, train, **{**base, **kw})


def _weights(folder) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def _names(state: dict[str, torch.Tensor]) -> tuple[str, str | None]:
    emb = next(n for n in state if n.endswith("embed_tokens.weight"))
    head = "lm_head.weight" if "lm_head.weight" in state else None
    return emb, head


def _check_rows(before: torch.Tensor, after: torch.Tensor, mode: str | None, n_old: int, seen_new: np.ndarray,
                what: str) -> None:
    if mode is None:
        assert torch.equal(before, after), f"{what}: frozen but changed"
        return
    if mode == "new":
        assert torch.equal(before[:n_old], after[:n_old]), f"{what}: an old row moved"
    changed = (before != after).reshape(before.shape[0], -1).any(dim=1)
    assert changed[torch.as_tensor(seen_new)].all(), f"{what}: a trained new row did not change"
    if mode == "all":
        assert changed[:n_old].any(), f"{what}: old rows trained but none changed"


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("stage", list(EEVE))
def test_stage_freezes_exactly(tiny, family, stage, tmp_path):
    model_dir, data_dir = tiny(family)
    train, emb_mode, head_mode, body = EEVE[stage]
    tied = FAMILIES[family][3]
    if tied:  # one matrix: it trains the union of both sides
        emb_mode = head_mode = max(emb_mode, head_mode, key=lambda m: RANK[m])
    summary = train_stage(model_dir, data_dir, tmp_path / "out", _spec(f"stage{stage}", train),
                          run_config(seed=0, checkpoint_dir=str(tmp_path / "ckpt")))
    assert summary["steps"] == 3
    before, after = _weights(model_dir), _weights(tmp_path / "out")
    assert before.keys() == after.keys()
    emb, head = _names(before)
    n_old = json.loads((model_dir / "expansion.json").read_text())["old_vocab"]
    # new tokens in the rows the stage read get input-row gradients; every new lm_head row gets one
    train = open_split(data_dir, "train")
    rows = np.concatenate([step_rows(s, 4, len(train), stage_seed(0, f"stage{stage}")) for s in range(3)])
    seen_new = np.unique(train[rows][:, :-1]).astype(np.int64)  # the last token of a row is only a label
    seen_new = seen_new[seen_new >= n_old]
    assert len(seen_new) > 0
    _check_rows(before[emb], after[emb], emb_mode, n_old, seen_new, "input embedding")
    if head is not None:
        all_new = np.arange(n_old, before[head].shape[0])
        _check_rows(before[head], after[head], head_mode, n_old, all_new, "lm_head")
        if "lm_head.bias" in before:  # phi
            _check_rows(before["lm_head.bias"][:, None], after["lm_head.bias"][:, None], head_mode, n_old, all_new,
                        "lm_head bias")
    for name in before:
        if name in (emb, head, "lm_head.bias"):
            continue
        same = torch.equal(before[name], after[name])
        assert same != body, f"{name}: {'frozen but changed' if same is False else 'trained but unchanged'}"


@pytest.mark.parametrize("family", ["llama", "phi"])
def test_checkpoint_resume_gives_the_same_weights(tiny, family, tmp_path):
    model_dir, data_dir = tiny(family)
    spec = _spec("stage5", ("embed_new", "head_all"), max_steps=6, eval_every=2, save_every=2, schedule="cosine",
                 warmup_steps=2)
    train_stage(model_dir, data_dir, tmp_path / "whole", spec, run_config(checkpoint_dir=str(tmp_path / "c1")))

    class KilledError(Exception):
        pass

    def kill(step: int) -> None:
        if step == 5:  # after the step-4 checkpoint, before the step-6 one
            raise KilledError

    with pytest.raises(KilledError):
        train_stage(model_dir, data_dir, tmp_path / "resumed", spec, run_config(checkpoint_dir=str(tmp_path / "c2")),
                    on_step=kill)
    assert (tmp_path / "c2" / "latest.json").exists()
    summary = train_stage(model_dir, data_dir, tmp_path / "resumed", spec,
                          run_config(checkpoint_dir=str(tmp_path / "c2")))
    assert summary["steps"] == 6
    whole, resumed = _weights(tmp_path / "whole"), _weights(tmp_path / "resumed")
    for name in whole:
        assert torch.equal(whole[name], resumed[name]), name
    assert not (tmp_path / "c2").exists(), "checkpoints are removed once the stage is saved"
    # the log, rebuilt from the checkpoint, is the same file
    logs = [(tmp_path / run / "training_log.csv").read_bytes() for run in ("whole", "resumed")]
    assert logs[0] == logs[1]


@pytest.mark.parametrize("min_delta", [0.0, 0.5])
def test_best_checkpoint_and_plateau(tiny, min_delta, tmp_path):
    """The stage keeps its lowest validation loss (even a drop smaller than min_delta) and stops on a plateau."""
    model_dir, data_dir = tiny("llama")
    spec = _spec("plateau", ("head_all",), lr=1.0 if min_delta == 0 else 0.05, max_steps=40, eval_every=1,
                 save_every=1, patience=2, min_delta=min_delta, weight_decay=0.0)
    summary = train_stage(model_dir, data_dir, tmp_path / "out", spec, run_config())
    assert summary["stopped"] == "plateau" and summary["steps"] < 40
    with open(tmp_path / "out" / "training_log.csv", newline="") as fh:
        val = {int(r["step"]): float(r["val_loss"]) for r in csv.DictReader(fh) if r["val_loss"] and r["step"] != "0"}
    assert summary["best_step"] == min(val, key=val.get)
    assert summary["best_val_loss"] == min(val.values())
    # the saved checkpoint is that state: a next stage starts from exactly this validation loss
    nxt = train_stage(tmp_path / "out", data_dir, tmp_path / "next", _spec("next", ("head_new",), max_steps=1),
                      run_config())
    assert nxt["first_val_loss"] == summary["best_val_loss"]


@pytest.mark.slow
def test_sigkill_then_rerun_resumes_to_the_same_weights(tiny, tmp_path):
    """A real kill (SIGKILL of the stage process once a checkpoint is on disk), then a rerun of the same command."""
    import os
    import signal
    import subprocess
    import sys
    import time

    model_dir, data_dir = tiny("llama")
    spec = _spec("stage6", ("all",), max_steps=12, eval_every=2, save_every=2, schedule="cosine")
    train_stage(model_dir, data_dir, tmp_path / "whole", spec, run_config())
    (tmp_path / "spec.json").write_text(json.dumps(spec.to_dict()))
    (tmp_path / "run.json").write_text(json.dumps(run_config(checkpoint_dir=str(tmp_path / "ckpt")).to_dict()))
    cmd = [sys.executable, "-m", "vocab_expansion.training", "stage", str(model_dir), str(data_dir),
           str(tmp_path / "killed"), "--spec", str(tmp_path / "spec.json"), "--settings", str(tmp_path / "run.json")]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (tmp_path / "ckpt" / "latest.json").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the stage finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "killed" / "stage.json").exists()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    whole, resumed = _weights(tmp_path / "whole"), _weights(tmp_path / "killed")
    for name in whole:
        assert torch.equal(whole[name], resumed[name]), name


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_bf16_storage_keeps_frozen_weights_bit_identical(tiny, family, strategy, tmp_path):
    """A bf16 checkpoint trained in bf16 (frozen weights stored in bf16, fp32 master weights for the trained
    rows) and saved in bf16: every frozen tensor and row comes out with the same bits."""
    import shutil

    from transformers import AutoModelForCausalLM

    model_dir, data_dir = tiny(family)
    bf16_dir = tmp_path / "bf16"
    AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16).save_pretrained(bf16_dir)
    for f in model_dir.iterdir():
        if not f.name.startswith(("model", "config")):
            shutil.copyfile(f, bf16_dir / f.name)
    spec = _spec("bf16", ("embed_new", "head_new"), precision="bf16", strategy=strategy)
    train_stage(bf16_dir, data_dir, tmp_path / "out", spec, run_config(save_dtype="bf16"))
    before, after = _weights(bf16_dir), _weights(tmp_path / "out")
    assert before.keys() == after.keys() and all(t.dtype == torch.bfloat16 for t in after.values())
    n_old = json.loads((model_dir / "expansion.json").read_text())["old_vocab"]
    emb, head = _names(before)
    for name in before:
        if name in (emb, head):
            assert torch.equal(before[name][:n_old], after[name][:n_old]), f"{name}: an old row moved"
            assert not torch.equal(before[name][n_old:], after[name][n_old:]), f"{name}: new rows did not train"
        else:
            assert torch.equal(before[name], after[name]), f"{name}: frozen but changed"


@pytest.mark.slow
def test_compiled_blocks_train_like_eager(tiny, tmp_path):
    """``compile: true`` (torch.compile of every decoder block) computes the eager stage's losses."""
    model_dir, data_dir = tiny("llama")
    spec = _spec("compile", ("all",), max_steps=2, eval_every=2, save_every=2)
    eager = train_stage(model_dir, data_dir, tmp_path / "eager", spec, run_config())
    compiled = train_stage(model_dir, data_dir, tmp_path / "compiled", dataclasses.replace(spec, compile=True),
                           run_config())
    assert compiled["best_val_loss"] == pytest.approx(eager["best_val_loss"], rel=1e-4)
