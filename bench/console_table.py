"""The benchmark table as the console shows it: one aligned row per figure.

Used by ``python -m bench`` and by each entry run as a script
(``common.entry_main``); BENCHMARKS.md's Markdown table reuses its cells.
"""

from __future__ import annotations


def number(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.3g}"
    return str(value)


def _target(row: dict) -> str:
    if row.get("target") is None:
        return ""
    text = f"{'≥' if row.get('higher_is_better', True) else '≤'} {row['target']:g}"
    return text + (f" (goal {row['goal']:g})" if row.get("goal") else "")


def _met(row: dict) -> str:
    return {True: "yes", False: "NO", None: ""}[row.get("met")]


def _memory(row: dict) -> str:
    figure, baseline = row.get("peak_mb"), row.get("baseline_peak_mb")
    if figure is not None and baseline is not None:
        return f"{figure:,.0f} / {baseline:,.0f}"
    if figure is not None:
        return f"{figure:,.0f}"
    return ""


def row_cells(row: dict) -> list[str]:
    unit = row.get("unit") or ""
    return [
        row["name"],
        f"{number(row.get('figure'))} {unit}".strip(),
        "" if row.get("baseline") is None else f"{number(row['baseline'])} {unit}".strip(),
        "" if row.get("ratio") is None else f"{row['ratio']:.2f}",
        _target(row),
        _met(row),
        _memory(row),
    ]


HEADERS = ["benchmark", "figure", "baseline", "ratio", "target", "met?", "peak MB (figure / baseline)"]


def format_console(rows: list[dict]) -> str:
    """Rows as an aligned text table, with each row's note under it."""
    lines = [HEADERS] + [row_cells(row) for row in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADERS))]
    text = []
    for index, line in enumerate(lines):
        text.append(
            "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths, strict=False)))
        )
        note = rows[index - 1].get("note") if index else ""
        if note:
            text.append(" " * 4 + note)
    return "\n".join(text)
