"""Development and test settings: everything from ``base`` with its development defaults."""

from .base import *  # noqa: F403
