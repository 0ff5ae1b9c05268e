"""Markdown tables from rows of plain data, with numbers printed the way a reader wants
them (``7.05``, not ``7.050000000000001``). Every generated table of the project goes
through here, so the docs, results/*.md and the leaderboard print figures alike."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

# A column: (key in the row, header label, format). The format is a str.format template
# such as "{:.2f}x" or "{:.0%}"; "" means :func:`number`'s rounding.
Column = Sequence[str]


def number(value: Any) -> str:
    """A cell: None as blank, floats to at most 2 decimals with trailing zeros dropped,
    ints with thousands separators, lists joined with commas."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        text = f"{value:.2f}".rstrip("0").rstrip(".")
        return "0" if text == "-0" else text
    if isinstance(value, (list, tuple)):
        return ", ".join(number(v) for v in value)
    return str(value).replace("|", "\\|").replace("\n", " ")


def cell(value: Any, template: str = "") -> str:
    """``value`` printed with ``template`` (a str.format template), or :func:`number`."""
    if value is None or not template:
        return number(value)
    return template.format(value)


def markdown_table(columns: Sequence[Column], rows: Sequence[dict[str, Any]]) -> str:
    """A markdown table; columns whose first row holds a number are right-aligned, and a
    column that no row fills is left out."""
    columns = [(c[0], c[1], c[2] if len(c) > 2 else "") for c in columns]
    columns = [c for c in columns if not rows or any(r.get(c[0]) not in (None, "") for r in rows)]
    first = rows[0] if rows else {}
    rule = [
        "---:"
        if isinstance(first.get(key), (int, float)) and not isinstance(first.get(key), bool)
        else "---"
        for key, _, _ in columns
    ]
    lines = ["| " + " | ".join(label for _, label, _ in columns) + " |", "|" + "|".join(rule) + "|"]
    lines += ["| " + " | ".join(cell(r.get(k), f) for k, _, f in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"
