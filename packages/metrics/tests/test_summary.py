"""The summary, perf-log join and Markdown table of the CLI (cache-dit's --summary -table)."""

from __future__ import annotations

from ditkit_metrics.summary import (
    Result,
    format_summary,
    markdown_table,
    parse_value,
    perf_label,
    read_perf_lines,
    summary_rows,
)

RESULTS = [
    Result("C0_NONE", "C0_DBCACHE_F1B0", "psnr", 30.123456, 4),
    Result("C0_NONE", "C0_DBCACHE_F8B0", "psnr", 35.5, 4),
    Result("C0_NONE", "C0_DBCACHE_F1B0", "mse", 12.0, 4),
]


def test_result_line_is_cache_dits():
    assert RESULTS[0].line() == "C0_NONE vs C0_DBCACHE_F1B0, Num: 4, PSNR: 30.12346"
    video = Result("ref.mp4", "test.mp4", "ssim", 0.5, 81, "Frames")
    assert video.line() == "ref.mp4 vs test.mp4, Frames: 81, SSIM: 0.50000"


def test_perf_log_parsing(tmp_path):
    log = tmp_path / "perf.log"
    log.write_text(
        "C0_NONE Mean   Time: 4.0s rank 0\n"
        "C0_DBCACHE_F1B0 Mean Time: 2.0s rank 0\n"
        "C0_DBCACHE_F1B0 Mean Time: 3.0s rank 1\n"
        "C0_DBCACHE_F8B0 mean time: 3.2s rank 0\n"
        "unrelated line\n"
    )
    assert len(read_perf_lines(log, ["Mean Time"])) == 4
    assert read_perf_lines(log, ["mean time"], ["rank 1"]) == [
        "C0_DBCACHE_F1B0 Mean Time: 3.0s rank 1"
    ]
    assert read_perf_lines(None, ["x"]) == [] and read_perf_lines(log, []) == []
    assert parse_value("C0 Mean   Time: 4.0s", "Mean Time") == 4.0
    assert parse_value("TFLOPs: 12", "tflops") == 12.0 and parse_value("none", "x") is None
    assert [perf_label(t) for t in ("Mean Time", "TFLOPs", "FLOPs", "mem")] == [
        "Latency(s)",
        "TFLOPs",
        "FLOPs",
        "MEM",
    ]
    lines = read_perf_lines(log, ["Mean Time"])
    rows = summary_rows(RESULTS, "psnr", lines, ["Mean Time"], cal_speedup=True)
    assert [r.result.test for r in rows] == ["C0_DBCACHE_F8B0", "C0_DBCACHE_F1B0"]  # best first
    assert rows[1].perf == {"Latency(s)": 2.5}  # the mean of its two lines
    assert rows[1].speedup["Latency(s)"] == 4.0 / 2.5  # against the reference's 4.0 s
    text = format_summary(rows, "psnr")
    assert "Summary: PSNR" in text and "Latency(s)(↑): 1.60" in text
    assert text.splitlines()[0] == "-" * max(len(line) for line in text.splitlines())
    table = markdown_table(rows, "psnr").splitlines()
    assert table[0] == "| Config | PSNR | Latency(s) | SpeedUp(↑) |"
    assert table[3] == "| F1B0 | 30.1235 | 2.50 | 1.60 |"


def test_lower_is_better_and_no_perf():
    rows = summary_rows([*RESULTS, Result("C0_NONE", "X", "mse", 3.0, 4)], "mse")
    assert [r.result.value for r in rows] == [3.0, 12.0]
    assert markdown_table(rows, "mse").splitlines()[0] == "| Config | MSE |"
    assert summary_rows(RESULTS, "ssim") == [] and format_summary([], "ssim") == ""
