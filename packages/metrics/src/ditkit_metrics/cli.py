"""The ``ditkit-metrics`` command (also ``python -m ditkit_metrics``), cache-dit-metrics' arguments.

    ditkit-metrics psnr ssim -i1 ref.png -i2 test.png
    ditkit-metrics all -i1 ref_dir -i2 test_dir                 # files paired by name
    ditkit-metrics psnr -d outputs -r outputs/C0_NONE -s -table   # 1 reference vs N folders
    ditkit-metrics clip_score -p prompts.txt -i2 test_dir       # CLIP_MODEL_DIR=...
    ditkit-metrics psnr -v1 ref.mp4 -v2 test.mp4                # or two frame folders
    ditkit-metrics psnr -vd videos -rv videos/ref.mp4 -s

Each result prints as ``ref vs test, Num: n, METRIC: value``; ``--summary`` adds a sorted summary
per metric (perf figures from ``--perf-log``/``--perf-tags``, ``--cal-speedup``), and
``--gen-markdown-table`` a Markdown table. The exit status is 1 when a metric could not be
computed (its error is printed, the other metrics still run), 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import io
from .summary import Result, format_summary, markdown_table, read_perf_lines, summary_rows

__all__ = ["METRICS_CHOICES", "build_parser", "entrypoint", "main", "plan_jobs"]

METRICS_CHOICES = ["lpips", "psnr", "ssim", "mse", "fid", "all", "clip_score", "image_reward"]
PAIR_METRICS = ["lpips", "psnr", "ssim", "mse", "fid"]  # what "all" means
PROMPT_METRICS = ["clip_score", "image_reward"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser: cache-dit-metrics' options plus the weight locations."""
    p = argparse.ArgumentParser(
        prog="ditkit-metrics",
        description="Image and video quality metrics (cache-dit-metrics compatible).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("metrics", nargs="+", choices=METRICS_CHOICES, help="metrics to compute")
    add = p.add_argument
    add("--img-true", "-i1", help="reference image or folder of images")
    add("--img-test", "-i2", help="test image or folder of images")
    add("--prompt-true", "-p", help="prompt file (one per line) for clip_score/image_reward")
    add("--video-true", "-v1", help="reference video, frame folder or folder of videos")
    add("--video-test", "-v2", help="test video, frame folder or folder of videos")
    add("--img-source-dir", "-d", help="folder of image folders to compare with -r or -rp")
    add("--ref-img-dir", "-r", help="reference image folder (1 vs N with -d)")
    add("--ref-prompt-true", "-rp", help="prompt file (1 vs N with -d)")
    add("--video-source-dir", "-vd", help="folder of videos to compare with -rv")
    add("--ref-video", "-rv", help="reference video (1 vs N with -vd)")
    add("--fid-batch-size", "-b", type=int, default=8, help="images per Inception pass")
    add("--fid-dims", type=int, choices=[64, 192, 768, 2048], default=2048, help="FID features")
    add("--enable-verbose", "-verbose", action="store_true", help="print what is compared")
    add("--summary", "-s", action="store_true", help="print a sorted summary per metric")
    add("--perf-log", "-plog", help="log file with perf figures of the compared runs")
    add("--perf-tags", "-ptags", nargs="+", default=[], help="perf tags to read (e.g. 'Mean Time')")
    add(
        "--extra-perf-tags",
        "-extra-ptags",
        nargs="+",
        default=[],
        help="tags a perf line must also hold",
    )
    add(
        "--psnr-type",
        choices=["custom", "skimage"],
        default="custom",
        help="kept for compatibility",
    )
    add("--cal-speedup", action="store_true", help="add speedups to the summary")
    add("--gen-markdown-table", "-table", action="store_true", help="print a Markdown table too")
    add("--lpips-net", choices=["alex", "vgg"], default="alex", help="LPIPS trunk")
    add("--lpips-weights", help="LPIPS weights folder/file (default $DITKIT_LPIPS_WEIGHTS)")
    add("--fid-weights", help="FID Inception weights file/folder (default $DITKIT_FID_WEIGHTS)")
    add("--clip-model-dir", help="CLIP model folder (default $CLIP_MODEL_DIR)")
    add("--image-reward-model-dir", help="ImageReward folder (default $IMAGEREWARD_MODEL_DIR)")
    add("--device", help="device of the networks (default: CUDA when available, else CPU)")
    return p


@dataclass(frozen=True)
class Job:
    """One comparison: ``kind`` is ``image`` (two images/folders), ``prompt`` (prompt file vs
    images) or ``video``."""

    kind: str
    true: str
    test: str

    @property
    def unit(self) -> str:
        return "Frames" if self.kind == "video" else "Num"


def _subfolders(source: str, skip: str | None = None) -> list[str]:
    root = Path(source)
    if not root.is_dir():
        raise FileNotFoundError(f"{source} is not a folder")
    skipped = Path(skip).name if skip else None
    found = [p for p in root.iterdir() if p.is_dir() and p.name != skipped]
    return [str(p) for p in sorted(found, key=io.natural_key)]


def plan_jobs(args: argparse.Namespace) -> list[Job]:
    """The comparisons the arguments ask for (cache-dit's three 1-vs-N patterns, else pairs)."""
    if args.img_source_dir and args.ref_img_dir:
        subs = _subfolders(args.img_source_dir, skip=args.ref_img_dir)
        return [Job("image", args.ref_img_dir, s) for s in subs]
    if args.video_source_dir and args.ref_video:
        ref = Path(args.ref_video)
        if ref.is_dir():  # frame folders
            tests = _subfolders(args.video_source_dir, skip=args.ref_video)
        else:
            videos = io.list_videos(args.video_source_dir)
            tests = [str(v) for v in videos if v.name != ref.name]
        return [Job("video", args.ref_video, t) for t in tests]
    if args.img_source_dir and args.ref_prompt_true:
        subs = _subfolders(args.img_source_dir)
        return [Job("prompt", args.ref_prompt_true, s) for s in subs]
    jobs = []
    if args.img_true and args.img_test:
        jobs.append(Job("image", args.img_true, args.img_test))
    if args.prompt_true and args.img_test:
        jobs.append(Job("prompt", args.prompt_true, args.img_test))
    if args.video_true and args.video_test:
        jobs.append(Job("video", args.video_true, args.video_test))
    return jobs


@dataclass
class Models:
    """The networks of one CLI run, loaded on first use (a failed load is remembered)."""

    args: argparse.Namespace
    loaded: dict[str, Any] = field(default_factory=dict)

    def get(self, name: str, build: Callable[[], Any]) -> Any:
        if name not in self.loaded:
            try:
                self.loaded[name] = build()
            except Exception as err:
                self.loaded[name] = err
        value = self.loaded[name]
        if isinstance(value, Exception):
            raise value
        return value

    def lpips(self) -> Any:
        from .lpips import load_lpips

        a = self.args
        return self.get("lpips", lambda: load_lpips(a.lpips_net, a.lpips_weights, a.device))

    def fid(self) -> Any:
        from .fid import FrechetInceptionDistance

        a = self.args
        return self.get(
            "fid",
            lambda: FrechetInceptionDistance(
                a.device, a.fid_dims, batch_size=a.fid_batch_size, weights=a.fid_weights
            ),
        )

    def scorer(self, metric: str) -> Any:
        from .prompt_metrics import make_scorer

        folder = self.args.clip_model_dir if metric == "clip_score" else None
        if metric == "image_reward":
            folder = self.args.image_reward_model_dir
        return self.get(metric, lambda: make_scorer(metric, folder, self.args.device))


def compute(metric: str, job: Job, models: Models, psnr_type: str = "custom") -> tuple[float, int]:
    """Run one metric on one job: ``(value, count)``."""
    from . import compare

    if job.kind == "prompt":
        from .prompt_metrics import score_files

        return score_files(models.scorer(metric), job.test, job.true)
    video = job.kind == "video"
    if metric == "fid":
        fid = models.fid()
        return (
            fid.compute_video_fid(job.true, job.test)
            if video
            else fid.compute_fid(job.true, job.test)
        )
    if metric == "lpips":
        function = compare.compute_video_lpips if video else compare.compute_lpips
        return function(job.true, job.test, model=models.lpips())
    if metric == "psnr" and not video:
        return compare.compute_psnr(job.true, job.test, psnr_type=psnr_type)
    return getattr(compare, f"compute_{'video_' if video else ''}{metric}")(job.true, job.test)


def _metrics_for(job: Job, chosen: Sequence[str]) -> list[str]:
    wanted = PAIR_METRICS if job.kind != "prompt" else PROMPT_METRICS
    expanded = [m for name in chosen for m in (PAIR_METRICS if name == "all" else [name])]
    return [m for m in dict.fromkeys(expanded) if m in wanted]


def run(args: argparse.Namespace, jobs: Sequence[Job]) -> tuple[list[Result], int]:
    """Compute every asked metric on every job, printing each result (errors to stderr).
    Returns (results, number of failed computations)."""
    out, err = sys.stdout, sys.stderr
    models = Models(args)
    results: list[Result] = []
    failures, reported = 0, set()
    order = list(dict.fromkeys(args.metrics))
    if args.enable_verbose:
        print(f"metrics: {order}; comparisons: {[(j.true, j.test) for j in jobs]}", file=err)
    for name in order:
        for job in jobs:
            for metric in _metrics_for(job, [name]):
                true_name, test_name = Path(job.true).name, Path(job.test).name
                label = f"{metric} of {test_name} vs {true_name}"
                try:
                    value, count = compute(metric, job, models, args.psnr_type)
                except Exception as error:  # report it, go on with the other metrics
                    failures += 1
                    text = str(error)
                    print(
                        f"error: {label}: " + ("(as above)" if text in reported else text), file=err
                    )
                    reported.add(text)
                    continue
                result = Result(true_name, test_name, metric, value, count, job.unit)
                results.append(result)
                print(result.line(), file=out)
    return results, failures


def _print_summary(args: argparse.Namespace, results: list[Result]) -> None:
    perf_lines = read_perf_lines(args.perf_log, args.perf_tags, args.extra_perf_tags)
    names = [
        m
        for name in args.metrics
        for m in (PAIR_METRICS + PROMPT_METRICS if name == "all" else [name])
    ]
    for metric in dict.fromkeys(names):
        rows = summary_rows(results, metric, perf_lines, args.perf_tags, args.cal_speedup)
        if not rows:
            continue
        print(format_summary(rows, metric))
        if args.gen_markdown_table:
            print(markdown_table(rows, metric))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``ditkit-metrics``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.fid_batch_size < 1:
        parser.error("--fid-batch-size must be >= 1")
    try:
        jobs = plan_jobs(args)
    except (OSError, ValueError) as error:
        parser.error(str(error))
    if not jobs:
        parser.error(
            "nothing to compare: give -i1 and -i2, -p and -i2, -v1 and -v2, "
            "-d and -r, -d and -rp, or -vd and -rv"
        )
    results, failures = run(args, jobs)
    if not results and not failures:
        kinds = sorted({j.kind for j in jobs})
        print(
            f"error: none of {args.metrics} applies to {kinds} comparisons (image and video "
            f"pairs take {PAIR_METRICS}, prompt files {PROMPT_METRICS})",
            file=sys.stderr,
        )
        return 1
    if args.summary:
        _print_summary(args, results)
    return 1 if failures else 0


def entrypoint() -> None:
    """cache-dit's name for the command's entry point: run and exit with its status."""
    sys.exit(main())
