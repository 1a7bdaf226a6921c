"""The README's Performance table and plot, drawn from the recorded results (bench/results/*.json).

    python -m bench.report            # print the table, write bench/results/performance.png
    python -m bench.report --readme   # also put the table between the README's performance markers

Every figure comes from a results file, with the command that made it; published figures are
the ones quoted from model cards and papers (PUBLISHED below), never mixed with ours.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from bench.common import RESULTS

README = RESULTS.parents[1] / "README.md"
PLOT = RESULTS / "performance.png"
START, END = "<!-- performance:start -->", "<!-- performance:end -->"
# Published speeds (REFERENCE.md, from the model cards and reference demos): not measured here.
PUBLISHED = [
    ("CogVideoX-5B, 50 steps, 49 frames 720x480", "about 90 s on an H100, 180 s on an A100"),
    ("CogVideoX-2B, 50 steps", "about 45 s on an H100"),
    ("LTX-Video 13B distilled, HD clip", "about 10 s on an H100"),
    ("Pyramid Flow miniflux, 5 s at 768p", "about 5.5 min on an A100"),
]


def load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def pages_result() -> dict[str, Any] | None:
    return load("pages") or load("pages_quick")


def _ms(summary: dict[str, float]) -> str:
    return f"{summary['p50_ms']:g} / {summary['p99_ms']:g} ms"


def rows() -> list[tuple[str, str, str]]:
    """(what, measured result with its baseline, command) for every recorded benchmark."""
    out = []
    if duty := load("worker_duty"):
        ours, base = duty["ours"], duty["baseline_rq_simpleworker"]
        out.append(
            (
                f"worker duty cycle, {duty['pace_s']:g} s jobs",
                f"{ours['duty_cycle']} ({ours['overhead_ms_per_job']} ms ours per job; plain RQ "
                f"`SimpleWorker` {base['overhead_ms_per_job']} ms)",
                duty["command"],
            )
        )
    for pages in filter(None, (load("pages"), load("pages_quick"))):
        held = [p["pages"] for p in pages["ours"] if (p["update_delay_p99_s"] or 0) <= 1.0]
        rest, alone = pages.get("rest_of_app_at_target", {}), pages.get("rest_of_app_no_pages", {})
        meanwhile = ", ".join(
            f"{k} {_ms(v)}" + (f" (no pages: {_ms(alone[k])})" if k in alone else "") for k, v in rest.items()
        )
        out.append(
            (
                "watching pages, each following a running job (update delay p99 <= 1 s)",
                f"{pages['pages']} pages: p99 {pages['update_delay_p99_s']} s (most held: {max(held, default=0)}); "
                f"a page polling every 0.5 s, same run: {pages['baseline_pages_at_1s']} pages. "
                f"Meanwhile p50 / p99: {meanwhile}",
                pages["command"],
            )
        )
    if once := load("models_load_once_cpu"):
        ratios = [r["ratio_first_to_second"] for r in once["results"].values()]
        out.append(
            (
                "load once, tiny checkpoints, CPU",
                f"second job {min(ratios):g}-{max(ratios):g}x faster than the first (which loads the model)",
                f"python -m bench.models_load_once --repeat {once['repeat']}",
            )
        )
    for name in ("hosted_inflight", "hosted_inflight_128"):
        if hosted := load(name):
            out.append(
                (
                    f"hosted jobs in flight, one worker, remote jobs of {hosted['remote_job_s']:g} s",
                    f"{hosted['max_remote_jobs_in_flight']} of {hosted['jobs']} at once, all done in "
                    f"{hosted['all_done_s']} s (one at a time: {hosted['one_at_a_time_would_take_s']:g} s); "
                    f"worker memory {hosted['worker_rss_mb_max']} MB at most",
                    hosted["command"],
                )
            )
    if api := load("api_latency"):
        out.append(
            (
                f"submit and status, {api['clients']} clients",
                f"p50 / p99 submit {_ms(api['submit'])}, status {_ms(api['status'])} "
                f"(a static file from the same server: {_ms(api['static'])})",
                api["command"],
            )
        )
    if gallery := load("gallery"):
        big = gallery["latency"][-1]
        out.append(
            (
                f"gallery, {big['rows']:,} rows",
                f"first page {_ms(big['first_page'])}, search {_ms(big['search'])} "
                f"(sorting every match: {_ms(big['search_baseline_sort_all_matches'])})",
                "python -m bench.gallery",
            )
        )
    if fuzz := load("fuzz"):
        counts = ", ".join(f"{code} × {n}" for code, n in sorted(fuzz["by_status"].items()))
        out.append(
            (
                f"fuzz, {fuzz['requests']:,} generated requests (job bodies, raw bodies and content types, routes, "
                "gallery queries)",
                f"{fuzz['server_errors']} server errors: {counts}; accepted jobs: "
                + ", ".join(f"{n} {state}" for state, n in fuzz["accepted_jobs"].items())
                + "; "
                f"{fuzz['restarts_clean']} clean restarts; {fuzz['seconds']} s",
                fuzz["command"],
            )
        )
    return out


def gpu_rows() -> list[tuple[str, ...]]:
    """One row per measured model and feature; a tiny CPU run is labelled as the smoke run it is."""
    out = []
    for path in sorted(RESULTS.glob("gpu_*.json")):
        run = json.loads(path.read_text())
        where = run["card"] if run["measured"] else "CPU, tiny random model (code check, not a speed)"
        for model in run["results"]:
            for label in ("bf16", "compile", "attention", "step_cache", "fp8", "all"):
                r = model.get(label)
                if r is None:
                    continue
                if "error" in r:
                    out.append(
                        (where, model["model"], label, "fails: " + " ".join(r["error"].split())[:90], "", "", "")
                    )
                    continue
                ratio = "1" if label == "bf16" else f"{r['step_ratio']:g}"
                video = f"{r['video_s']:g} s" if run["measured"] else "n/a"
                vram = f"{r['peak_vram_gb']:g} GB" if run["measured"] else "n/a"
                out.append((where, model["model"], label, f"{r['step_s']:g} s", ratio, video, vram))
    return out


def table() -> str:
    lines = ["| benchmark | result (measured) | command |", "|---|---|---|"]
    lines += [f"| {what} | {result} | `{command}` |" for what, result, command in rows()]
    gpu = gpu_rows()
    lines += ["", "GPU, random weights at each checkpoint's published configuration, bf16:", ""]
    lines += [
        "| where | model | features | s per step | step ratio | s per video | peak VRAM |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += ["| " + " | ".join(r) + " |" for r in gpu] or ["| (no GPU run recorded yet) | | | | | | |"]
    lines += ["", "Published (model cards and reference demos, not measured here):", ""]
    lines += ["| model | published speed |", "|---|---|"] + [f"| {m} | {s} |" for m, s in PUBLISHED]
    return "\n".join(lines)


def latencies() -> dict[str, float]:
    """p99 in ms of the app's other calls, from the recorded runs."""
    out = {}
    if api := load("api_latency"):
        out |= {f"{k} ({api['clients']} clients)": api[k]["p99_ms"] for k in ("submit", "status", "static")}
    if pages := pages_result():
        rest = pages.get("rest_of_app_at_target", {})
        out |= {f"{k} ({pages['pages']} pages watching)": v["p99_ms"] for k, v in rest.items()}
    if gallery := load("gallery"):
        big = gallery["latency"][-1]
        out |= {
            f"gallery {k.replace('_', ' ')} ({big['rows']:,} rows)": big[k]["p99_ms"] for k in ("first_page", "search")
        }
    return out


def plot() -> Path | None:
    """Update delay against watching pages (ours beside the polling page), and the app's other latencies."""
    pages = pages_result()
    if pages is None:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5), dpi=100, gridspec_kw={"width_ratios": [1, 1.2]})
    for key, label, style in (
        ("ours", "pushed (server-sent events, one update loop)", "o-"),
        ("baseline_polling_0_5s", "polling every 0.5 s (gr.Timer)", "s--"),
    ):
        points = [p for p in pages[key] if p["update_delay_p99_s"] is not None]
        left.plot([p["pages"] for p in points], [p["update_delay_p99_s"] for p in points], style, label=label)
    left.axhline(1.0, color="grey", linewidth=0.8, linestyle=":")
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_xlabel("watching pages (each following a running job)")
    left.set_ylabel("update delay p99 (s)")
    left.set_title(f"Page updates, {pages['machine']['cores']} cores ({pages['at'][:10]})")
    left.legend(fontsize=8)

    found = latencies()
    right.barh(list(found), list(found.values()), color="tab:gray")
    right.axvline(50, color="tab:red", linewidth=0.8, linestyle=":")
    right.set_xscale("log")
    for axis in (left.xaxis, left.yaxis, right.xaxis):
        axis.set_major_formatter(ScalarFormatter())
        axis.set_minor_formatter(NullFormatter())
    right.set_xlabel("p99 (ms); dotted: 50 ms target")
    right.tick_params(axis="y", labelsize=8)
    duty = load("worker_duty")
    right.set_title("Other calls" + (f"; worker duty cycle {duty['ours']['duty_cycle']}" if duty else ""))
    fig.tight_layout()
    fig.savefig(PLOT)
    plt.close(fig)
    return PLOT


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readme", action="store_true", help="write the table into README.md")
    args = parser.parse_args()
    text = table()
    print(text)
    drawn = plot()
    if args.readme:
        readme = README.read_text()
        if START not in readme or END not in readme:
            raise SystemExit(f"README.md has no {START} ... {END} markers")
        block = f"{START}\n{text}\n\n" + (
            f"![Update delay against watching pages](bench/results/{drawn.name})\n" if drawn else ""
        )
        README.write_text(re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: block + END, readme, flags=re.S))


if __name__ == "__main__":
    main()
