"""Small helpers shared by the benchmark scripts: order statistics and a text table."""

from __future__ import annotations

import math
import os
import platform
import statistics
from collections.abc import Sequence


def median(values: Sequence[float]) -> float:
    """The median (NaN for no values)."""
    return statistics.median(values) if values else math.nan


def p90(values: Sequence[float]) -> float:
    """The 90th percentile by nearest rank (NaN for no values)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain left/right aligned text table (first column left, the rest right)."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        parts = [
            str(c).ljust(w) if i == 0 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def machine(load_at_start: float) -> str:
    """Where the figures were taken, with the 1-minute load average at start and end."""
    return (
        f"python {platform.python_version()} on {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs, load average {load_at_start:.2f} at start, "
        f"{os.getloadavg()[0]:.2f} at end"
    )


def load_now() -> float:
    """The 1-minute load average (other work on a shared box shows up here)."""
    return os.getloadavg()[0]
