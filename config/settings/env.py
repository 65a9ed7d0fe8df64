"""What every settings module reads from: the project's paths and the environment.

Not a settings module itself: ``base`` and the per-concern modules import from it.
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()


def env_overrides(prefix: str, defaults: dict, casts: dict | None = None) -> dict:
    """``{prefix + name: value}`` for the knobs of an app's ``defaults``: the environment
    variable of that name parsed like its default (bool, int, float, comma-separated list,
    text) or by ``casts[name]`` (``env.float``, say), else the default. A knob whose default
    is None and that has no cast is left out: it is the project's to set in code.

    Raises ``ImproperlyConfigured`` (django-environ) for a value that does not parse.
    """
    parsers = {bool: env.bool, int: env.int, float: env.float, list: env.list, str: env.str}
    casts = casts or {}
    values = {}
    for name, default in defaults.items():
        parse = casts.get(name) or parsers.get(type(default))
        if parse is not None:
            values[prefix + name] = parse(prefix + name, default=default)
    return values
