"""Errors that the workflow reports to users instead of a traceback from deep inside a library."""


class InputError(ValueError):
    """Bad user input: names the file (and key or line) that is wrong and says what was expected."""


class ConfigError(ValueError):
    """A configuration value that cannot work, naming the key."""
