"""envs/*.yaml (conda environments per rule group) agree with requirements.txt and cover what each rule imports."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

SRC = ROOT / "src"
PACKAGE = "vocab_expansion"


def _pins(lines: list[str]) -> dict[str, str]:
    out = {}
    for line in lines:
        m = re.match(r"^\s*([A-Za-z0-9_.\-]+)==([^\s#]+)", line)
        if m:
            out[m.group(1).lower().replace("_", "-")] = m.group(2)
    return out


REQUIREMENTS = _pins((ROOT / "requirements.txt").read_text().splitlines())
ENVS = {p.name: yaml.safe_load(p.read_text()) for p in sorted((ROOT / "envs").glob("*.yaml"))}


def _env_pins(env: dict) -> dict[str, str]:
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return _pins(pip)


def _rule_envs() -> dict[str, tuple[str, str | None]]:
    """rule -> (conda env file, script) from rules/*.smk."""
    out = {}
    for smk in sorted((ROOT / "rules").glob("*.smk")):
        for block in re.split(r"\n(?=(?:rule|checkpoint) \w+:)", smk.read_text()):
            m = re.match(r"(?:rule|checkpoint) (\w+):", block)
            if not m:
                continue
            conda = re.search(r"conda:\s*\n\s*\"\.\./envs/([^\"]+)\"", block)
            script = re.search(r"script:\s*\n\s*\"\.\./scripts/([^\"]+)\"", block)
            out[m.group(1)] = (conda.group(1) if conda else None, script.group(1) if script else None)
    return out


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


def _module_file(name: str) -> Path | None:
    base = SRC / Path(*name.split("."))
    for cand in (base.with_suffix(".py"), base / "__init__.py"):
        if cand.is_file():
            return cand
    return None


def third_party_imports(script: Path) -> set[str]:
    """Top-level third-party modules a script imports, following the project's package (lazy imports too)."""
    seen: set[Path] = set()
    todo, found = [script], set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in _imports(path):
            top = name.split(".")[0]
            if top == PACKAGE:
                parts = name.split(".")
                for i in range(1, len(parts) + 1):  # the package's __init__ files and the module itself
                    f = _module_file(".".join(parts[:i]))
                    if f:
                        todo.append(f)
            elif top not in sys.stdlib_module_names and top != "snakemake":
                found.add(top)
    return found


def test_env_pins_equal_requirements():
    for name, env in ENVS.items():
        pins = _env_pins(env)
        assert pins, name
        for dist, version in pins.items():
            assert REQUIREMENTS.get(dist) == version, f"envs/{name}: {dist}=={version}, requirements.txt " \
                                                     f"has {REQUIREMENTS.get(dist)}"
        assert "python=3.11" in env["dependencies"], name


def test_every_scripted_rule_has_an_env_that_covers_its_imports():
    dists = packages_distributions()
    rules = _rule_envs()
    assert len(rules) > 20
    for rule, (env, script) in rules.items():
        if script is None:
            continue
        assert env in ENVS, f"rule {rule}: conda env {env!r} is not in envs/"
        pins = _env_pins(ENVS[env])
        for module in sorted(third_party_imports(ROOT / "scripts" / script)):
            provided = {d.lower().replace("_", "-") for d in dists.get(module, [])}
            assert provided, f"rule {rule}: {module} is imported but not installed here"
            assert provided & set(pins), f"rule {rule} ({script}) imports {module}: envs/{env} lacks {provided}"


@pytest.mark.parametrize("name", sorted(ENVS))
def test_env_files_are_conda_env_files(name):
    env = ENVS[name]
    assert env["channels"][0] == "conda-forge"
    assert "pip" in env["dependencies"]
