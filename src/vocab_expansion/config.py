"""Load and validate the workflow configuration, filling the schema's defaults.

The same schema (``schemas/config.schema.yaml``) is used by the Snakefile (through
``snakemake.utils.validate``) and here, so ``python -m`` commands see exactly the config a
workflow run sees.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from vocab_expansion.errors import ConfigError

SCHEMA_PATH = Path(__file__).parent / "schemas" / "config.schema.yaml"


def _with_defaults(validator_class: type) -> type:
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator: Any, properties: dict, instance: Any, schema: dict) -> Any:
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub:
                    instance.setdefault(name, copy.deepcopy(sub["default"]))
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def schema() -> dict[str, Any]:
    """The configuration schema (a fresh copy: callers may change it)."""
    return copy.deepcopy(_parsed_schema())


@functools.cache
def _parsed_schema() -> dict[str, Any]:
    # parsed once per process: every step config's from_config reads its section's defaults here
    return yaml.safe_load(SCHEMA_PATH.read_text(encoding="utf-8"))


def validate(config: dict[str, Any], source: str = "config") -> dict[str, Any]:
    """Validate ``config`` in place (filling defaults) and return it; ConfigError names the bad key."""
    sch = schema()
    validator = _with_defaults(jsonschema.Draft202012Validator)(sch)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"{source}: {'.'.join(map(str, e.absolute_path)) or '(top level)'}: {e.message}" for e in errors]
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines))
    return config


def subschema(section: str) -> dict[str, Any]:
    """The schema of one config section, by dotted key (``corpus.dedup``), with ``$ref`` resolved."""
    root = _parsed_schema()
    node: dict[str, Any] = root
    for key in section.split("."):
        node = _resolve(root, node)
        props = node.get("properties", {})
        if key in props:
            node = props[key]
        elif isinstance(node.get("additionalProperties"), dict):  # a map of named entries (training.stages)
            node = node["additionalProperties"]
        else:
            raise KeyError(f"the config schema has no section {section!r}")
    return copy.deepcopy({"$defs": root.get("$defs", {}), **_resolve(root, node)})


def _resolve(root: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:  # only local references (#/$defs/<name>) are used
        ref = node["$ref"].removeprefix("#/").split("/")
        target: Any = root
        for part in ref:
            target = target[part]
        node = {**{k: v for k, v in node.items() if k != "$ref"}, **target}
    return node


def section(name: str, values: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One config section (``corpus.dedup``): ``values`` validated against its schema, defaults filled.

    The schema is the one place a default is written: the step config classes call this from their
    ``from_config``, so the Python API and ``python -m`` fill the same defaults as the workflow.
    """
    sub = subschema(name)
    out = copy.deepcopy(dict(values or {}))
    validator = _with_defaults(jsonschema.Draft202012Validator)(sub)
    errors = sorted(validator.iter_errors(out), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"{name}.{'.'.join(map(str, e.absolute_path))}".rstrip(".") + f": {e.message}" for e in errors]
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines))
    return out


def load(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file and validate it."""
    try:
        config = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the config: {exc}") from exc
    return validate(config, str(path))
