"""What every settings module reads from: the project's paths and the environment.

Not a settings module itself: ``base`` and the per-concern modules import from it.
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()


def env_overrides(prefix: str, defaults: dict) -> dict:
    """``{prefix + name: value}`` for every knob of an app's ``defaults``: the environment
    variable of that name parsed like its default (bool, int, float, comma-separated list,
    text; a default of None is a number of seconds when set), or the default.

    Raises ``ImproperlyConfigured`` (django-environ) for a value that does not parse.
    """
    parsers = {bool: env.bool, int: env.int, float: env.float, list: env.list, str: env.str}
    values = {}
    for name, default in defaults.items():
        key = prefix + name
        parse = env.float if default is None else parsers[type(default)]
        values[key] = parse(key, default=default)
    return values
