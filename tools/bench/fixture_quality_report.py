"""The report half of ``fixture_quality.py``: the generated blocks of ``quality.md`` and the
Pillow plot ``quality.png``, both from the ``result`` dict the runs produce (so ``--render-only``
redraws them from ``quality.json``), plus the Pareto-front helper both halves use.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

LIB_LABEL = {"ditkit": "ditkit", "cache_dit": "cache-dit 1.5.3"}
CALIBRATORS: dict[str, dict[str, Any]] = {
    "TaylorSeer o1": {"type": "taylorseer", "taylorseer_order": 1},
    "TaylorSeer o2": {"type": "taylorseer", "taylorseer_order": 2},
    "FoCa": {"type": "foca"},
    "DMD": {"type": "dmd"},
}
BEGIN, END = "<!-- begin generated: {} -->", "<!-- end generated: {} -->"
CALIBRATED_BASES = ("F1B0 rdt=0.12", "F1B0 rdt=0.3", "SCM static fast", "SCM static ultra")


def pareto_keys(points: Sequence[tuple[str, int, float]]) -> list[str]:
    """Keys of the non-dominated ``(key, computed steps, PSNR)`` points, fewest steps first.

    A point is dominated when another has no more computed steps and at least its PSNR, and is
    better in one of the two (ties keep the first key).

    Example:
        >>> pareto_keys([("a", 10, 30.0), ("b", 12, 29.0), ("c", 12, 35.0), ("d", 10, 30.0)])
        ['a', 'c']
    """
    front, best = [], -math.inf
    for key, _, value in sorted(points, key=lambda p: (p[1], -p[2])):
        if value > best:
            front.append(key)
            best = value
    return front


TEMPLATE = f"""# Cache quality on the trained fixture: ditkit vs cache-dit 1.5.3

{BEGIN.format("header")}
{END.format("header")}

## What the numbers say

(written by hand after a run; `tools/bench/fixture_quality.py` keeps this section)

{BEGIN.format("tables")}
{END.format("tables")}
"""


def _by_key(rows: Sequence[dict[str, Any]], steps: int) -> dict[str, dict[str, dict]]:
    """``{config key: {library: row}}`` at ``steps``, in matrix order."""
    out: dict[str, dict[str, dict]] = {}
    for row in rows:
        if row["steps"] == steps:
            out.setdefault(row["key"], {})[row["library"]] = row
    return out


def _cells(by_lib: dict[str, dict], libs: Sequence[str], field: str, fmt: str) -> str:
    """``"a / b"``: one library's value per ``libs`` entry (``-`` where missing)."""
    values = []
    for lib in libs:
        row = by_lib.get(lib)
        value = None if row is None or row["error"] else row.get(field)
        values.append("-" if value is None else format(value, fmt))
    return " / ".join(values)


def header_block(result: dict[str, Any]) -> str:
    """Device, software, date, commit, command, method, and the plot."""
    meta, setup = result["meta"], result["setup"]
    versions = setup.get("versions", {})
    libs = " and ".join(
        f"{lib.replace('_', '-')} {versions.get(lib)}" for lib in setup["libraries"]
    )
    tree = (
        " (plus uncommitted changes in the working tree)" if meta["working_tree_modified"] else ""
    )
    rows = [
        ("device", f"{meta['cpu']} ({meta['machine']}), CPU only, **1 torch thread** per library"),
        (
            "software",
            f"Python {meta['python']}, torch {meta['torch']}, diffusers "
            f"{meta['diffusers']}; {libs}",
        ),
        ("date", meta["date"]),
        ("commit", f"`{meta['commit']}`{tree}"),
        ("command", f"`{meta['command']}`"),
        (
            "model",
            f"the ditkit fixture (FluxPipeline trained on digits, 32x32, 3 double + 9 "
            f"single blocks), {len(setup['digits'])} images (digits {min(setup['digits'])}-"
            f"{max(setup['digits'])}, image i seeded {setup['seed']} + i), steps "
            f"{', '.join(map(str, setup['steps']))}",
        ),
        (
            "method",
            f"each library in its own subprocess (`tools/compat/run_cached.py`), the two at "
            f"once; time = median of {setup['repeats']} pipeline calls (text encoders and VAE "
            f"included) after one warm-up call, as process CPU time (the machine was shared; "
            f"1 thread, so it equals wall time on an idle core; speedup from it) and wall time; "
            f"PSNR/SSIM against the same library's uncached images (per-image PSNR averaged, a "
            f"bit-identical image counted as {setup['psnr_cap_db']:.0f} dB); prompt accuracy by "
            f"the fixture's digit classifier; every cached config uses "
            f"`max_warmup_steps={setup['warmup']}`",
        ),
    ]
    lines = ["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows), ""]
    lines.append("![PSNR vs computed steps, ditkit vs cache-dit](quality.png)")
    return "\n".join(lines)


def _front_mark(result: dict[str, Any], steps: int, key: str, libs: Sequence[str]) -> str:
    fronts_ = result["fronts"]
    marks = [LIB_LABEL[lib].split()[0] for lib in libs if key in fronts_[lib][str(steps)]]
    return ", ".join(marks)


#: the per-config table's columns after the config: (heading, row field, format)
COLUMNS = (
    ("computed", "computed", "d"),
    ("CPU (s)", "cpu_s", ".2f"),
    ("speedup", "speedup", ".2f"),
    ("wall (s)", "wall_s", ".2f"),
    ("PSNR (dB)", "psnr_db", ".1f"),
    ("min PSNR", "psnr_min_db", ".1f"),
    ("SSIM", "ssim", ".4f"),
    ("accuracy", "accuracy", ".0%"),
)


def results_table(result: dict[str, Any], steps: int) -> list[str]:
    """The per-config table at ``steps`` (``a / b`` cells: ditkit / cache-dit)."""
    libs = result["setup"]["libraries"]
    head = ["config", *(c[0] for c in COLUMNS), "Pareto"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * len(COLUMNS) + "---|"]
    for key, by_lib in _by_key(result["rows"], steps).items():
        errors = [
            f"{LIB_LABEL[lib]}: {row['error']['type']}"
            for lib, row in by_lib.items()
            if isinstance(row["error"], dict)
        ]
        cells = [key, *(_cells(by_lib, libs, field, fmt) for _, field, fmt in COLUMNS)]
        cells.append(" ".join([_front_mark(result, steps, key, libs), *errors]))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def calibrator_lines(result: dict[str, Any]) -> list[str]:
    """PSNR of each calibrated base config without and with each calibrator, both libraries."""
    libs = result["setup"]["libraries"]
    names = ["none", *CALIBRATORS]
    lines = [
        "",
        "### Calibrators",
        "",
        "PSNR (dB) of the calibrated base configs, " + " / ".join(map(LIB_LABEL.get, libs)) + ":",
        "",
        "| steps | base config | computed | " + " | ".join(names) + " |",
        "|---:|---|---:|" + "---:|" * len(names),
    ]
    for steps in result["setup"]["steps"]:
        table = _by_key(result["rows"], steps)
        for base in CALIBRATED_BASES:
            if base not in table:
                continue
            keys = [base, *(f"{base} + {name}" for name in CALIBRATORS)]
            cells = [_cells(table.get(k, {}), libs, "psnr_db", ".1f") for k in keys]
            computed = _cells(table[base], libs[:1], "computed", "d")
            lines.append(f"| {steps} | {base} | {computed} | " + " | ".join(cells) + " |")
    return lines


def forecast_lines(result: dict[str, Any]) -> list[str]:
    """The open-loop forecast check as a table (mean relative L2 error per masked step)."""
    rows = result.get("forecast_check") or []
    if not rows:
        return []
    names = list(rows[0]["error"])
    lines = [
        "",
        "### Calibrator forecasts, open loop",
        "",
        "Mean relative L2 error of the forecast residual of blocks 1-11 (what F1B0 caches) over "
        "the steps each static mask caches, forecast from the mask's computed steps of the "
        "*uncached* run (`forecast_check` in the script)" + _recomputed(result) + ":",
        "",
        "| steps | mask | " + " | ".join(names) + " |",
        "|---:|---|" + "---:|" * len(names),
    ]
    for row in rows:
        cells = [f"{row['error'][n]:.3f}" for n in names]
        lines.append(
            f"| {row['steps']} | {row['policy']} `{row['mask']}` | " + " | ".join(cells) + " |"
        )
    return lines


def _recomputed(result: dict[str, Any]) -> str:
    """Where ``--forecast-only`` refreshed the table after the matrix run: when and at what."""
    meta = result.get("meta", {}).get("forecast_check")
    if not meta:
        return ""
    dirty = " plus uncommitted changes" if meta.get("working_tree_modified") else ""
    return f", recomputed on {meta['date']} at `{meta['commit'][:12]}`{dirty} (`--forecast-only`)"


def comparison_lines(result: dict[str, Any]) -> list[str]:
    """The uncached check, the per-config pairs and the front envelope, as Markdown."""
    lines = []
    for check in result["uncached"]:
        state = "identical" if check["identical"] else "**different**"
        hashes = ", ".join(
            f"{LIB_LABEL[k]} `{(v or '-')[:12]}`" for k, v in check["sha256"].items()
        )
        lines.append(f"- {check['steps']} steps, uncached outputs {state}: {hashes}")
    comparison = result["comparison"]
    pairs = comparison["pairs"]
    if not pairs:
        return lines
    same = [p for p in pairs if p["holds"] is not None]
    bits = sum(p["bit_identical"] for p in same)
    failed = [p for p in same if not p["holds"]]
    lines.append(
        f"- per config: {len(same)} of {len(pairs)} configs computed the same number of steps "
        f"under both libraries ({bits} of them bit-identical outputs); ditkit's PSNR >= "
        f"cache-dit's in {len(same) - len(failed)} of {len(same)}"
    )
    envelope = [e for e in comparison["envelope"] if e["holds"] is not None]
    worse = [e for e in envelope if not e["holds"]]
    lines.append(
        f"- best PSNR at <= c computed steps (the fronts): ditkit >= cache-dit at "
        f"{len(envelope) - len(worse)} of {len(envelope)} step counts c"
        + (
            ""
            if not worse
            else ": not at " + ", ".join(f"{e['steps']}/{e['computed']}" for e in worse)
        )
    )
    head = "| steps | config | computed | same cached steps | PSNR (dB) | ditkit - cache-dit |"
    lines += ["", head, "|---:|---|---:|---|---:|---:|"]
    for p in pairs:
        if p["bit_identical"]:
            continue
        cells = (
            str(p["steps"]),
            p["key"],
            f"{p['computed'][0]} / {p['computed'][1]}",
            "yes" if p["same_cached_steps"] else "no",
            f"{p['psnr_db'][0]:.2f} / {p['psnr_db'][1]:.2f}",
            f"{p['delta_db']:+.2f}",
        )
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def tables_block(result: dict[str, Any]) -> str:
    """Everything measured: one table per step count, the fronts, the library comparison."""
    libs = result["setup"]["libraries"]
    order = " / ".join(LIB_LABEL[lib] for lib in libs)
    lines = [
        f"## Results\n\nCells read {order}. Pareto: on the library's front of PSNR vs "
        "computed steps at that step count."
    ]
    for steps in result["setup"]["steps"]:
        lines += ["", f"### {steps} steps", "", *results_table(result, steps)]
    lines += ["", "### Pareto fronts", ""]
    lines.append("By computed steps (the plot), then by median CPU time, cheapest first:")
    lines.append("")
    for lib, by_steps in result["fronts"].items():
        for steps, keys in by_steps.items():
            table = {k: v[lib] for k, v in _by_key(result["rows"], int(steps)).items() if lib in v}
            points = ", ".join(
                f"{k} ({table[k]['computed']}, {table[k]['psnr_db']:.1f} dB)" for k in keys
            )
            lines.append(f"- {LIB_LABEL[lib]}, {steps} steps: {points}")
            timed = [
                (k, r["cpu_s"], r["psnr_db"])
                for k, r in table.items()
                if not r["error"] and k != "uncached" and "cpu_s" in r
            ]
            points = ", ".join(
                f"{k} ({table[k]['cpu_s']:.2f} s, {table[k]['psnr_db']:.1f} dB)"
                for k in pareto_keys(timed)
            )
            lines.append(f"- {LIB_LABEL[lib]}, {steps} steps, by CPU time: {points}")
    if len(libs) > 1:
        lines += [
            "",
            "## ditkit vs cache-dit",
            "",
            "Rows with bit-identical outputs are left "
            "out of the table (same decisions, same arithmetic).",
            "",
        ]
        lines += comparison_lines(result)
    lines += calibrator_lines(result)
    lines += forecast_lines(result)
    return "\n".join(lines)


def write_markdown(result: dict[str, Any], path: Path) -> str:
    """Fill the generated blocks of ``path`` (created from a template), keeping the rest."""
    text = path.read_text() if path.exists() else TEMPLATE
    for name, body in (("header", header_block(result)), ("tables", tables_block(result))):
        begin, end = BEGIN.format(name), END.format(name)
        if begin not in text:
            text = text.rstrip("\n") + f"\n\n{begin}\n{end}\n"
        pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), flags=re.S)
        block = f"{begin}\n{body}\n{end}"
        text = pattern.sub(lambda _, block=block: block, text, count=1)
    path.write_text(text)
    return text


#: one colour per family (RGB)
FAMILY_COLOURS = {
    "F1B0": (31, 119, 180),
    "F4B0": (23, 190, 207),
    "F8B0": (127, 127, 127),
    "SCM static": (214, 39, 40),
    "SCM dynamic": (255, 127, 14),
    "+ TaylorSeer o1": (44, 160, 44),
    "+ TaylorSeer o2": (0, 90, 0),
    "+ FoCa": (148, 103, 189),
    "+ DMD": (140, 86, 75),
}


def plot(result: dict[str, Any], path: Path, panel: tuple[int, int] = (620, 460)) -> Any:
    """PSNR vs computed steps, one panel per step count: ditkit filled circles, cache-dit
    hollow squares, colour by family; each library's Pareto front as a line (ditkit solid,
    cache-dit dashed). Returns the Pillow image."""
    from PIL import Image, ImageDraw, ImageFont

    steps_list = result["setup"]["steps"]
    width, height = panel
    legend_h = 64
    image = Image.new("RGB", (width * len(steps_list), height + legend_h), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=13)
    rows = [r for r in result["rows"] if not r["error"] and r["key"] != "uncached"]
    values = [r["psnr_db"] for r in rows if not r["identical"]] or [0.0, 1.0]
    y_lo, y_hi = 5 * math.floor(min(values) / 5), 5 * math.ceil(max(values) / 5 + 0.01)
    left, right, top, bottom = 52, 14, 30, 42
    for index, steps in enumerate(steps_list):
        x0 = index * width
        mine = [r for r in rows if r["steps"] == steps]
        x_lo = max(0, min((r["computed"] for r in mine), default=0) - 1)
        x_hi = steps

        def xy(computed: float, db: float, x0: int = x0, x_lo: int = x_lo, x_hi: int = x_hi):
            x = x0 + left + (width - left - right) * (computed - x_lo) / max(x_hi - x_lo, 1)
            y = top + (height - top - bottom) * (y_hi - db) / max(y_hi - y_lo, 1e-9)
            return x, y

        draw.rectangle([x0 + left, top, x0 + width - right, height - bottom], outline="black")
        for db in range(int(y_lo), int(y_hi) + 1, 5 if y_hi - y_lo <= 60 else 10):
            _, y = xy(x_lo, db)
            draw.line([(x0 + left - 4, y), (x0 + left, y)], fill="black")
            draw.text((x0 + 6, y - 7), f"{db}", fill="black", font=font)
        tick = max(1, (x_hi - x_lo) // 10)
        for c in range(x_lo, x_hi + 1, tick):
            x, _ = xy(c, y_lo)
            draw.line([(x, height - bottom), (x, height - bottom + 4)], fill="black")
            draw.text((x - 6, height - bottom + 6), str(c), fill="black", font=font)
        title = f"{steps} steps: PSNR (dB) vs computed steps"
        draw.text((x0 + left, 8), title, fill="black", font=font)
        draw.text((x0 + width // 2 - 50, height - 18), "computed steps", fill="black", font=font)
        for lib, dashed in (("cache_dit", True), ("ditkit", False)):
            table = {r["key"]: r for r in mine if r["library"] == lib}
            keys = result["fronts"].get(lib, {}).get(str(steps), [])
            points = [xy(table[k]["computed"], min(table[k]["psnr_db"], y_hi)) for k in keys]
            for a, b in itertools.pairwise(points):
                if dashed:
                    _dashed_segment(draw, a, b, (90, 90, 90))
                else:
                    draw.line([a, b], fill=(0, 0, 0), width=2)
        for r in sorted(mine, key=lambda r: r["library"] != "cache_dit"):
            x, y = xy(r["computed"], min(r["psnr_db"], y_hi))  # identical: on the top edge
            colour = FAMILY_COLOURS.get(r["family"], (0, 0, 0))
            if r["library"] == "cache_dit":
                draw.rectangle([x - 6, y - 6, x + 6, y + 6], outline=colour, width=2)
            else:
                draw.ellipse([x - 4, y - 4, x + 4, y + 4], fill=colour)
    x, y = 10, height + 6
    for family, colour in FAMILY_COLOURS.items():
        draw.ellipse([x, y + 3, x + 8, y + 11], fill=colour)
        draw.text((x + 12, y), family, fill=colour, font=font)
        x += 22 + int(draw.textlength(family, font=font))
        if x > image.width - 160:
            x, y = 10, y + 18
    key_text = (
        "ditkit: filled circle, front solid; cache-dit 1.5.3: hollow square, front dashed; "
        "outputs identical to uncached sit on the top edge"
    )
    draw.text((10, height + legend_h - 20), key_text, fill="black", font=font)
    image.save(path)
    return image


def _dashed_segment(draw: Any, a: tuple[float, float], b: tuple[float, float], colour) -> None:
    length = math.dist(a, b)
    for start in range(0, int(length), 10):
        t0, t1 = start / length, min(start + 6, length) / length
        p0 = (a[0] + (b[0] - a[0]) * t0, a[1] + (b[1] - a[1]) * t0)
        p1 = (a[0] + (b[0] - a[0]) * t1, a[1] + (b[1] - a[1]) * t1)
        draw.line([p0, p1], fill=colour, width=2)
