"""A plain text table for the terminal: columns padded to their widest cell."""

from __future__ import annotations


def format_table(rows: list[tuple[str, ...]]) -> str:
    """``rows`` (the first is the header) as left-aligned columns two spaces apart."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip() for row in rows
    )
