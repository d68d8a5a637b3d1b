"""Invariants of the code's shape: small modules, no import cycle, one owner per path and per default,
rule names that say their step, and script entry points that match their rules."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import pytest

from vocab_expansion import config as configlib

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "vocab_expansion"
MAX_LINES = 400
RULE_FILES = [ROOT / "Snakefile", *sorted((ROOT / "rules").glob("*.smk"))]
STEPS = ("corpus", "tokenizer", "model", "training", "eval", "report")
TARGETS = ("all", "init_ablation")  # rules a user asks for by name: they gather other rules' outputs, no script


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def test_no_module_over_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in [*_modules(), *RULE_FILES]
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def _imports(path: Path, name: str) -> set[str]:
    """Package modules ``path`` imports at module level or inside functions (both make a cycle)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            if node.level:  # relative import
                pkg = name.split(".")[: -node.level] if path.name != "__init__.py" else name.split(".")
                base = ".".join([*pkg, node.module])
            out.add(base)
            out |= {f"{base}.{a.name}" for a in node.names}
    return {m for m in out if m.startswith("vocab_expansion")}


def test_no_import_cycle():
    mods = {_name(p): p for p in _modules()}
    graph = {m: {i for i in _imports(p, m) if i in mods and i != m} for m, p in mods.items()}
    # a package's __init__ re-exporting its modules is not a dependency of those modules on each other
    graph = {m: {i for i in deps if not (mods[i].name == "__init__.py" and m.startswith(i + "."))}
             for m, deps in graph.items()}
    cycles, state = [], {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = "open"
        for d in sorted(graph[m]):
            if state.get(d) == "open":
                cycles.append([*stack[stack.index(d):], d] if d in stack else [m, d])
            elif d not in state:
                visit(d, [*stack, d])
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycles, f"import cycles: {cycles}"


def _string_literals(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every string literal that is not a docstring or comment."""
    text = path.read_text(encoding="utf-8")
    out = []
    prev = None
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.STRING:
            is_doc = tok.string.lstrip("rbuRBUfF").startswith(('"""', "'''")) and (
                prev is None or prev.type in (tokenize.INDENT, tokenize.NEWLINE, tokenize.NL, tokenize.DEDENT))
            if not is_doc:
                out.append((tok.start[0], tok.string))
        if tok.type not in (tokenize.COMMENT, tokenize.NL):
            prev = tok
    return out


@pytest.mark.parametrize("root", ["src", "scripts", "rules", "Snakefile"])
def test_no_results_path_outside_the_paths_module(root):
    files = [ROOT / root] if (ROOT / root).is_file() else sorted((ROOT / root).rglob("*.py")) + sorted(
        (ROOT / root).rglob("*.smk"))
    hits = [f"{p.relative_to(ROOT)}:{line}: {s}" for p in files if p.name != "paths.py"
            for line, s in _string_literals(p) if re.search(r"\b(results|logs)/", s)]
    assert not hits, "paths built outside vocab_expansion.paths:\n" + "\n".join(hits)


def _rules() -> dict[str, str]:
    """Rule name -> its script (or '' for rules without one), from the rules files."""
    out = {}
    for path in RULE_FILES:
        for m in re.finditer(r"(?ms)^(?:rule|checkpoint) (\w+):\n(.*?)(?=^\S|\Z)", path.read_text(encoding="utf-8")):
            script = re.search(r'script:\s*\n\s*"\.\./scripts/(\w+)\.py"', m.group(2))
            out[m.group(1)] = script.group(1) if script else ""
    return out


def test_rule_names_say_their_step_and_match_their_script():
    rules = _rules()
    bad = [r for r in rules if r not in TARGETS and r.split("_", 1)[0] not in STEPS]
    assert not bad, f"rules not named <step>_<action>: {bad}"
    assert not [r for r in TARGETS if rules.get(r)], "a target rule runs a script: name it <step>_<action>"
    mismatched = {r: s for r, s in rules.items() if s and not r.startswith(s.removesuffix("_english"))
                  and not s.startswith(r)}
    assert not mismatched, f"rules whose script has another name: {mismatched}"


def _section_classes() -> list[tuple[str, str, list[tuple[str, int]]]]:
    """(class, config section, fields with a default) of every class whose from_config reads a schema section."""
    out = []
    for path in _modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
            sections = [c.args[0].value for c in ast.walk(cls) if isinstance(c, ast.Call)
                        and getattr(c.func, "attr", getattr(c.func, "id", None)) == "section"
                        and c.args and isinstance(c.args[0], ast.Constant) and isinstance(c.args[0].value, str)]
            if not sections:
                continue
            defaults = [(n.target.id, n.lineno) for n in cls.body if isinstance(n, ast.AnnAssign)
                        and isinstance(n.target, ast.Name) and n.value is not None
                        and "ClassVar" not in ast.unparse(n.annotation)]
            out.append((f"{path.relative_to(ROOT)}:{cls.name}", sections[0], defaults))
    return out


def test_config_defaults_are_written_once_in_the_schema():
    """A config class's fields that mirror its section's keys carry no default of their own."""
    classes = _section_classes()
    assert classes, "no config class reads its section through vocab_expansion.config.section"
    twice = []
    for where, section, defaults in classes:
        keys = set(configlib.subschema(section).get("properties", {}))
        twice += [f"{where}.{name} (line {line}) mirrors {section}.{name}" for name, line in defaults if name in keys]
    assert not twice, "defaults written beside the schema's:\n" + "\n".join(twice)


def test_schema_writes_each_block_once():
    """Repeated blocks (a training stage's keys) live once under $defs and are referenced, not copied."""
    blocks = []

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("properties"), dict):
                blocks.append(node["properties"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(configlib.schema())
    copies = []
    for i, a in enumerate(blocks):
        for b in blocks[i + 1:]:
            same = [k for k in a if k in b and a[k] == b[k] and isinstance(a[k], dict) and len(a[k]) > 1]
            if len(same) >= 5:
                copies.append(sorted(same))
    assert not copies, f"schema blocks written twice: {copies}"
