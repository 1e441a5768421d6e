"""Metric results, the perf-log join, and the summary and Markdown table of the CLI.

Each comparison gives a :class:`Result`, printed as cache-dit prints it
(``ref vs test, Num: 4, PSNR: 31.25000``). ``--summary`` sorts the results of each metric (best
first), adds the figures of matching lines of a perf log (``--perf-log``, ``--perf-tags``: a line
that contains a test's name and ``<tag>: <number>``), with ``--cal-speedup`` the speedup against
the slowest (the reference when it is in the log), and ``-table`` renders a Markdown table.

Example:
    >>> from ditkit_metrics.summary import Result, markdown_table, summary_rows
    >>> results = [Result("base", "C0_DBCACHE_F1B0", "psnr", 30.0, 4),
    ...            Result("base", "C0_DBCACHE_F8B0", "psnr", 35.0, 4)]
    >>> log = ["C0_DBCACHE_F1B0 Mean Time: 2.0s", "C0_DBCACHE_F8B0 Mean Time: 3.0s"]
    >>> print(markdown_table(summary_rows(results, "psnr", log, ["Mean Time"], True), "psnr"))
    | Config | PSNR | Latency(s) | SpeedUp(↑) |
    | --- | --- | --- | --- |
    | F8B0 | 35.0000 | 3.00 | 1.00 |
    | F1B0 | 30.0000 | 2.00 | 1.50 |
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "HIGHER_IS_BETTER",
    "Result",
    "Row",
    "format_summary",
    "markdown_table",
    "parse_value",
    "perf_label",
    "read_perf_lines",
    "summary_rows",
]

HIGHER_IS_BETTER = frozenset({"psnr", "ssim", "clip_score", "image_reward", "prompt_accuracy"})


@dataclass(frozen=True)
class Result:
    """One comparison: ``metric`` of ``test`` against ``reference`` over ``count`` pairs/frames."""

    reference: str
    test: str
    metric: str
    value: float
    count: int
    unit: str = "Num"  # "Frames" for videos, as cache-dit prints

    def line(self) -> str:
        return (
            f"{self.reference} vs {self.test}, {self.unit}: {self.count}, "
            f"{self.metric.upper()}: {self.value:.5f}"
        )


@dataclass
class Row:
    """A summary row: a result with its perf figures and speedups (by perf label)."""

    result: Result
    perf: dict[str, float | None] = field(default_factory=dict)
    speedup: dict[str, float] = field(default_factory=dict)

    @property
    def config(self) -> str:
        """The test's name without the part up to ``_DBCACHE_`` (cache-dit's table label)."""
        return self.result.test.split("_DBCACHE_", 1)[-1]


def read_perf_lines(
    path: str | Path | None, tags: Sequence[str], extra: Sequence[str] = ()
) -> list[str]:
    """Lines of the perf log that contain one of ``tags`` and every one of ``extra``
    (case-insensitive, a space matching any run of spaces); none without a log or a tag."""
    if path is None or not tags or not Path(path).is_file():
        return []
    wanted, needed = [_tag_pattern(t) for t in tags], [_tag_pattern(e) for e in extra]
    lines = []
    for raw in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        if any(p.search(raw) for p in wanted) and all(p.search(raw) for p in needed):
            lines.append(raw.strip())
    return lines


def _tag_pattern(tag: str) -> re.Pattern[str]:
    """``tag`` as a case-insensitive pattern in which a space matches any run of spaces."""
    return re.compile(re.escape(tag).replace(r"\ ", r"\s+"), re.IGNORECASE)


def parse_value(text: str, tag: str) -> float | None:
    """The number after ``<tag>:`` in ``text`` (spaces in the tag match any run of spaces)."""
    pattern = _tag_pattern(tag).pattern
    match = re.search(rf"{pattern}:\s*(\d+\.?\d*)", text, re.IGNORECASE)
    return float(match.group(1)) if match else None


def perf_label(tag: str) -> str:
    """The column name of a perf tag: Latency(s) for times, TFLOPs/FLOPs, else the tag."""
    low = tag.lower()
    if "time" in low:
        return "Latency(s)"
    if "tflops" in low:
        return "TFLOPs"
    if "flops" in low:
        return "FLOPs"
    return tag.upper()


def _perf_of(name: str, tag: str, lines: Sequence[str]) -> float | None:
    values = [v for line in lines if name in line and (v := parse_value(line, tag)) is not None]
    return sum(values) / len(values) if values else None


def summary_rows(
    results: Sequence[Result],
    metric: str,
    perf_lines: Sequence[str] = (),
    perf_tags: Sequence[str] = (),
    cal_speedup: bool = False,
) -> list[Row]:
    """The rows of ``metric``, best first, with perf figures and (optionally) speedups."""
    chosen = [r for r in results if r.metric == metric]
    chosen.sort(key=lambda r: r.value, reverse=metric in HIGHER_IS_BETTER)
    rows = [
        Row(r, {perf_label(t): _perf_of(r.test, t, perf_lines) for t in perf_tags}) for r in chosen
    ]
    if cal_speedup and rows:
        for tag in perf_tags:
            label = perf_label(tag)
            known = [row.perf[label] for row in rows if row.perf[label]]
            reference = _perf_of(rows[0].result.reference, tag, perf_lines)
            baseline = max([*known, reference or 0.0], default=0.0)
            for row in rows:
                value = row.perf[label]
                if value and baseline:
                    row.speedup[label] = baseline / value
    return rows


def _row_text(row: Row, width: int) -> str:
    result = row.result
    header = f"{result.reference} vs {result.test}"
    text = f"{header:<{width}}, {result.unit}: {result.count}, "
    text += f"{result.metric.upper()}: {result.value:<7.4f}"
    for label, value in row.perf.items():
        text += f", {label}: {value:.2f}" if value is not None else f", {label}: None"
    for label, value in row.speedup.items():
        text += f", {label}(↑): {value:.2f}"
    return text


def format_summary(rows: Sequence[Row], metric: str) -> str:
    """cache-dit's text summary block of one metric."""
    if not rows:
        return ""
    width = max(len(f"{r.result.reference} vs {r.result.test}") for r in rows)
    lines = [_row_text(r, width) for r in rows]
    rule = "-" * max(len(line) for line in lines)
    title = f"Summary: {metric.upper()}"
    return "\n".join([rule, title.center(len(rule)).rstrip(), rule, *lines, rule])


def markdown_table(rows: Sequence[Row], metric: str) -> str:
    """A Markdown table: Config, the metric, each perf column, then the speedups."""
    if not rows:
        return ""
    perf = list(dict.fromkeys(label for row in rows for label in row.perf))
    speed = list(dict.fromkeys(label for row in rows for label in row.speedup))
    speed_names = ["SpeedUp(↑)"] if len(speed) == 1 else [f"SpeedUp(↑) {s}" for s in speed]
    headers = ["Config", metric.upper(), *perf, *speed_names]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(["---"] * len(headers)) + " |"]
    for row in rows:
        cells = [row.config, f"{row.result.value:.4f}"]
        cells += [f"{row.perf[p]:.2f}" if row.perf.get(p) is not None else "" for p in perf]
        cells += [f"{row.speedup[s]:.2f}" if s in row.speedup else "" for s in speed]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
