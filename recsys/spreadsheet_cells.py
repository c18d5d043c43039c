"""Text cells of exported CSV files that a spreadsheet must not run as formulas (OWASP, "CSV injection")."""

from __future__ import annotations

#: A spreadsheet runs a cell starting with one of these as a formula.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def formula_safe(column: list) -> list:
    """A text column with every cell that a spreadsheet would run as a formula prefixed by ``'``; numeric
    columns (a negative contribution starts with "-" too) are left as they are."""
    first = next((value for value in column if value is not None), None)
    if not isinstance(first, str):
        return column
    return [f"'{value}" if isinstance(value, str) and value.startswith(FORMULA_START) else value
            for value in column]


def unescape_formula(value: str) -> str:
    """A cell as it was before :func:`formula_safe`: reading an exported file back gives the original ids."""
    return value[1:] if value.startswith("'") and value[1:].startswith(FORMULA_START) else value
