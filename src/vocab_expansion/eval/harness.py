"""Benchmark scores through lm-evaluation-harness: one results file per (checkpoint, task).

A config task names an lm-eval task and, optionally, local data. With ``data`` set, the project's local
twin of the task (``tasks/<task>_local.yaml``: the same prompts and metrics, reading the file or folder
in its original layout) is used; without it, lm-eval's own task loads its dataset from the hub. One
lm-eval run per checkpoint scores every task (the model is loaded once), then each task's scores go to
their own JSON file. Seeds are fixed, so the same checkpoint and settings give the same files.

A new local task is a task YAML in ``tasks/`` named ``<task>_local.yaml`` (a jsonl file in the task's
own fields needs no code: ``custom_dataset: !function loaders.jsonl``) and an entry in the config's
``eval.tasks``; :func:`local_tasks` finds the YAML by its name.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vocab_expansion import config as configlib
from vocab_expansion.errors import ConfigError
from vocab_expansion.fileio import write_json

log = logging.getLogger(__name__)

TASKS_DIR = Path(__file__).parent / "tasks"


def local_tasks() -> tuple[str, ...]:
    """The lm-eval tasks with a local twin: ``<task>`` for every ``<task>_local.yaml`` in :data:`TASKS_DIR`."""
    return tuple(sorted(p.stem.removesuffix("_local") for p in TASKS_DIR.glob("*_local.yaml")))


@dataclass(frozen=True)
class TaskSpec:
    """One benchmark of the config (``eval.tasks.<name>``). Build it with :meth:`from_config`."""

    name: str
    task: str
    data: str | None
    metric: str
    num_fewshot: int | None  # None: the run's eval.num_fewshot (the schema gives this key no default)

    @property
    def lm_eval_task(self) -> str:
        """The lm-eval task to run: the local twin when data are given, else the hub task."""
        if self.data is None:
            return self.task
        local = local_tasks()
        if self.task not in local:
            raise ConfigError(f"eval.tasks.{self.name}: no local twin of lm-eval task {self.task!r} "
                              f"(local data works for: {', '.join(local)}); set data: null to use the hub")
        return f"{self.task}_local"

    @classmethod
    def from_config(cls, name: str, task: Mapping[str, Any]) -> TaskSpec:
        """A task from its config entry (``eval.tasks.<name>``, defaults filled from the schema)."""
        t = configlib.section(f"eval.tasks.{name}", task)
        return cls(name=name, task=t["task"], data=t["data"], metric=t["metric"], num_fewshot=t.get("num_fewshot"))


@dataclass(frozen=True)
class HarnessConfig:
    """Knobs of one lm-eval run: the enabled eval.tasks, eval.num_fewshot, eval.limit, eval.batch_size and the
    seed. Build it with :meth:`from_config`."""

    tasks: tuple[TaskSpec, ...]
    num_fewshot: int
    limit: int | None
    batch_size: int
    seed: int

    @classmethod
    def from_config(cls, eval_section: Mapping[str, Any] | None, *, seed: int) -> HarnessConfig:
        """From the eval section, or the part of it with these keys (defaults filled from the schema)."""
        ev = configlib.section("eval", eval_section)
        tasks = tuple(TaskSpec.from_config(name, t) for name, t in ev["tasks"].items() if t["enabled"])
        return cls(tasks=tasks, num_fewshot=ev["num_fewshot"], limit=ev["limit"], batch_size=ev["batch_size"],
                   seed=seed)


def _clean(value: Any) -> Any:
    return None if isinstance(value, str) and value == "N/A" else value


def scores(results: dict[str, Any], task: str) -> dict[str, Any]:
    """The metrics of one task (or group) from lm-eval's results: ``{"acc": ..., "acc_stderr": ...}``."""
    block = results.get("groups", {}).get(task) or results["results"][task]
    out = {}
    for key, value in block.items():
        if "," in key:
            metric, _filter = key.split(",", 1)
            out[metric] = _clean(value)
    return out


def run_tasks(model_dir: str, cfg: HarnessConfig, outputs: Mapping[str, str], *, checkpoint: str = "",
              device: str | None = None, max_length: int | None = None) -> dict[str, dict[str, Any]]:
    """Score ``model_dir`` on ``cfg.tasks`` with lm-eval; write each task's scores to ``outputs[task.name]``.

    ``device`` defaults to CUDA when there is one; ``max_length`` caps lm-eval's window (None: the model's).
    """
    import lm_eval
    import torch
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    tasks = cfg.tasks
    if all(t.data for t in tasks):  # nothing to fetch: no network round trips (seconds each when offline)
        for var in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE", "HF_EVALUATE_OFFLINE"):
            os.environ.setdefault(var, "1")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    data_paths = {t.lm_eval_task: str(Path(t.data).resolve()) for t in tasks if t.data}
    hub = any(t.data is None for t in tasks)  # indexing all of lm-eval's tasks takes ~15 s: only for hub tasks
    manager = TaskManager(include_path=str(TASKS_DIR), include_defaults=hub, metadata={"data_paths": data_paths})
    extra = {"max_length": max_length} if max_length else {}
    lm = HFLM(pretrained=model_dir, batch_size=cfg.batch_size, device=device, **extra)
    summary: dict[str, dict[str, Any]] = {}
    by_shots: dict[int, list[TaskSpec]] = {}
    for t in tasks:
        by_shots.setdefault(cfg.num_fewshot if t.num_fewshot is None else t.num_fewshot, []).append(t)
    for shots, group in sorted(by_shots.items()):
        names = [t.lm_eval_task for t in group]
        log.info("%s: lm-eval %s, %d-shot, limit %s", checkpoint or model_dir, names, shots, cfg.limit)
        seeds = {"random_seed": cfg.seed, "numpy_random_seed": cfg.seed, "torch_random_seed": cfg.seed,
                 "fewshot_random_seed": cfg.seed}
        res = lm_eval.simple_evaluate(model=lm, tasks=names, task_manager=manager, num_fewshot=shots, limit=cfg.limit,
                                      log_samples=False, bootstrap_iters=1000, **seeds)
        for t in group:
            metrics = scores(res, t.lm_eval_task)
            if t.metric not in metrics:
                raise ConfigError(f"eval.tasks.{t.name}.metric: {t.metric!r} is not reported by {t.lm_eval_task} "
                                  f"(it reports {', '.join(sorted(metrics))})")
            n = res.get("n-samples", {}).get(t.lm_eval_task, {})
            record = {"checkpoint": checkpoint, "name": t.name, "task": t.lm_eval_task,
                      "data": t.data or "hub", "num_fewshot": shots, "limit": cfg.limit, "metric": t.metric,
                      "score": metrics[t.metric], "metrics": metrics, "samples": n.get("effective"),
                      "lm_eval_version": lm_eval.__version__}
            write_json(outputs[t.name], record)
            summary[t.name] = record
            log.info("%s %s: %s = %.4f (%s items)", checkpoint, t.name, t.metric, metrics[t.metric],
                     n.get("effective"))
    return summary
