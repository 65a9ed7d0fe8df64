"""The apps' boundary (README "How it is built"): payments, accounts and notifications talk over
HTTP or the queue, and payments calls notifications' services and selectors, never another
app's models; core, shared by all, imports no app's models."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APPS = ("payments", "accounts", "notifications", "core")


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, by its dotted name."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("app", APPS)
def test_no_app_imports_another_apps_models(app):
    """No module of ``app`` (migrations aside) imports the models of another app."""
    others = {f"{other}.models" for other in APPS if other != app}
    offending = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in sorted((ROOT / app).rglob("*.py"))
        if "migrations" not in path.parts
        for name in imported_modules(path)
        if name in others or any(name.startswith(f"{model}.") for model in others)
    ]
    assert offending == []
