"""How the report writes a figure: thousands separated, a dash for none."""

import math


def fmt(value, digits: int = 1) -> str:
    """``1234.5`` → ``"1,234.5"``, an int without decimals, None or NaN → ``"—"``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def ok(met) -> str:
    """A target's verdict: met, **missed**, or a dash when not measured."""
    return "—" if met is None else ("met" if met else "**missed**")


def table_row(*cells) -> str:
    """A Markdown table row of ``cells``, already formatted."""
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def table(caption: str, header: str, align: str, rows: list[str]) -> list[str]:
    """A scenario's Markdown lines: ``caption``, a blank line, the ``header`` and ``align``
    rows, then ``rows`` (already formatted), closed by a blank line."""
    return [caption, "", header, align, *rows, ""]
