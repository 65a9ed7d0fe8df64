"""Markdown tables that line up in a terminal, for the summaries of demo, chaos and bench."""


def table(headers: tuple, rows: list, align: str) -> str:
    """``headers`` and ``rows`` (tuples of anything ``str()`` renders) as a Markdown table,
    padded per column; ``align`` is "l" or "r" per column."""
    cells = [tuple(str(cell) for cell in row) for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row):
        padded = (
            cell.ljust(width) if side == "l" else cell.rjust(width)
            for cell, width, side in zip(row, widths, align, strict=True)
        )
        return "| " + " | ".join(padded) + " |"

    rule = "|".join(
        "-" * (width + 1) + (":" if side == "r" else "-")
        for width, side in zip(widths, align, strict=True)
    )
    return "\n".join([line(cells[0]), f"|{rule}|", *(line(row) for row in cells[1:])])
