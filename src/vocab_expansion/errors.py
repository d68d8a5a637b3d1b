"""Errors that the workflow reports to users instead of a traceback from deep inside a library."""

from __future__ import annotations

import sys
from collections.abc import Callable


class InputError(ValueError):
    """Bad user input: names the file (and key or line) that is wrong and says what was expected."""


class ConfigError(ValueError):
    """A configuration value that cannot work, naming the key."""


def exit_status(step: Callable[[], object]) -> int:
    """Run a command-line step: 0 when it succeeds; 2 and one ``error: ...`` line on stderr for a user error."""
    try:
        step()
    except (InputError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
