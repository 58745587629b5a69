"""Tables of run results: markdown and CSV from dict rows, and the overrides that tell runs apart."""

from __future__ import annotations

import csv
import io
from typing import Any


def columns(rows: list[dict[str, Any]]) -> list[str]:
    """The union of the rows' keys, in order of first appearance."""
    names: list[str] = []
    for row in rows:
        names += [k for k in row if k not in names]
    return names


def _cell(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """A GitHub-flavoured markdown table of dict rows (union of their keys as columns)."""
    names = columns(rows)
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    lines += ["| " + " | ".join(_cell(row.get(c, "")) for c in names) + " |" for row in rows]
    return "\n".join(lines)


def csv_text(rows: list[dict[str, Any]]) -> str:
    """CSV of dict rows (union of their keys as columns)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns(rows))
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def varying_overrides(rows: list[dict[str, Any]]) -> list[list[str]]:
    """Each row's ``overrides`` (a space-separated string) without those every row shares."""
    split = [row["overrides"].split() for row in rows]
    common = set.intersection(*(set(s) for s in split)) if len(split) > 1 else set()
    return [[o for o in overrides if o not in common] for overrides in split]


def job_order(name: str) -> tuple[int, str]:
    """Sweep job folders ``<num>_<overrides>`` in launch order (2 before 10); others last."""
    number = name.split("_", 1)[0]
    return (int(number), name) if number.isdigit() else (1 << 30, name)
