"""Gallery benchmark: page and search latency at 10,000 and 100,000 generations, rebuilding the
index of 100,000 rows from a Hub dataset, and commits per 1,000 finished jobs.

    python -m bench.gallery                       # all of it, JSON into bench/results/gallery.json
    python -m bench.gallery --sizes 10000 --skip-rebuild --skip-commits

Rows are synthetic (prompts drawn from a Zipf-like vocabulary, five backends). The rebuild and
the commit count run the real IndexSync and Publisher through the real huggingface_hub client
against the loopback Hub server of the tests; the commit count runs the publisher on a
simulated clock (DAILIES_COMMIT_EVERY=60) so an hour of jobs takes seconds.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from bench.common import record, summary_ms
from dailies.app.dataset import Generation, LocalDataset, make_row
from dailies.app.hub import HubRepo, IndexSync
from dailies.app.index import GalleryQuery, Index, fts_query
from dailies.app.publisher import COMMIT_MAX_ROWS, Publisher, PublishQueue
from tests.hub_server import HubServer

BACKENDS = ["preview", "ltx-video", "wan", "cogvideox", "mochi"]
COMMON = (
    "a the of in at on with and cinematic slow motion golden hour city night rain ocean forest robot cat dog "
    "mountain river sunset drone shot close up portrait neon street snow desert space ship dragon flower"
).split()
QUERIES = [
    "sunset",
    "city night",
    "robot",
    "cinematic slow motion",
    "dragon flower",
    "neon street rain",
    "s",
    "ci",
    "mou",
    "drone shot ocean",
]
VOCAB_RANKS = (0, 10, 100, 1000, 10000)  # plus words of the synthetic vocabulary, common to rare


def vocabulary(rng: random.Random, size: int = 20000) -> list[str]:
    syllables = ["ka", "lo", "mi", "ven", "tor", "zu", "ar", "bel", "qui", "rsa", "dek", "om", "pra", "sil"]
    return sorted({"".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))) for _ in range(size)})


def synthetic_rows(n: int, seed: int = 1, start_ms: int = 1_760_000_000_000) -> list[dict]:
    rng = random.Random(seed)
    words = vocabulary(random.Random(0))
    weights = [1 / (i + 1) for i in range(len(words))]
    rows = []
    for i in range(n):
        ms = start_ms + i * 850 + rng.randint(0, 800)
        gid = f"{ms:012x}{rng.getrandbits(48):012x}"
        k = rng.randint(6, 30)
        prompt = " ".join(
            rng.choice(COMMON) if rng.random() < 0.35 else w for w in rng.choices(words, weights, k=k)
        ).capitalize()
        backend = rng.choice(BACKENDS)
        generation = Generation(
            id=gid,
            prompt=prompt,
            negative_prompt="",
            backend=backend,
            seed=rng.randint(0, 2**31),
            params={"steps": 30},
            group="",
            created=ms / 1000,
            model=f"{backend}-model",
            width=512,
            height=320,
            num_frames=49,
            fps=8,
            has_audio=False,
            timings={"run_s": 12.5},
        )
        date = time.strftime("%Y-%m-%d", time.gmtime(ms / 1000))
        row = make_row(generation, f"{gid}.mp4", f"posters/{date}/{gid}.jpg")
        row["video_path"] = f"data/{date}/{i // COMMIT_MAX_ROWS:08d}/{gid}.mp4"
        rows.append(row)
    return rows


def timed(fn, repeat: int) -> list[float]:
    """Seconds per call."""
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return samples


def bench_latency(size: int, folder: Path) -> dict:
    rows = synthetic_rows(size)
    random.Random(2).shuffle(rows)  # a rebuild inserts in no particular order
    index = Index(folder / f"index-{size}.sqlite")
    t = time.perf_counter()
    for start in range(0, size, 5000):
        index.add(rows[start : start + 5000])
    insert_s = time.perf_counter() - t
    newest = sorted(rows, key=lambda r: r["id"], reverse=True)
    first, cursor = index.page(GalleryQuery(24))
    assert [r["id"] for r in first] == [r["id"] for r in newest[:24]], "newest first"
    deep_cursor = newest[size // 2]["id"]
    words = vocabulary(random.Random(0))
    queries = QUERIES + [words[rank] for rank in VOCAB_RANKS if rank < len(words)]
    search, by_query = [], {}
    for q in queries:
        samples = timed(lambda q=q: index.page(GalleryQuery(24, q=q)), 15)
        by_query[q] = round(statistics.median(samples) * 1000, 3)
        search += samples
    # Baseline on the same data: what the index did before (collect every match, sort by id).
    sort_all = (
        "SELECT g.row FROM prompts JOIN generations g ON g.rowid = prompts.rowid "
        "WHERE prompts MATCH ? ORDER BY g.id DESC LIMIT 25"
    )
    db = index._db()
    baseline = []
    for q in queries:
        match = fts_query(q)
        baseline += timed(lambda match=match: db.execute(sort_all, (match,)).fetchall(), 5)
    filtered = []
    for q in QUERIES[:6]:
        filtered += timed(lambda q=q: index.page(GalleryQuery(24, q=q, backend="wan")), 10)
    return {
        "rows": size,
        "insert_s": round(insert_s, 2),
        "first_page": summary_ms(timed(lambda: index.page(GalleryQuery(24)), 300)),
        "next_page": summary_ms(timed(lambda: index.page(GalleryQuery(24, cursor=cursor)), 300)),
        "deep_page": summary_ms(timed(lambda: index.page(GalleryQuery(24, cursor=deep_cursor)), 300)),
        "backend_filter": summary_ms(timed(lambda: index.page(GalleryQuery(24, backend="mochi")), 300)),
        "search": summary_ms(search),
        "search_with_backend_filter": summary_ms(filtered),
        "search_baseline_sort_all_matches": summary_ms(baseline),
        "search_p50_ms_by_query": by_query,
    }


def bench_rebuild(size: int, folder: Path) -> dict:
    rows = synthetic_rows(size, seed=3)
    repo_id = "bench/dailies"
    with HubServer() as hub:
        by_folder: dict[str, list[str]] = {}
        for r in rows:
            line = json.dumps({k: v for k, v in r.items() if k != "video_path"}, ensure_ascii=False)
            by_folder.setdefault(r["video_path"].rsplit("/", 1)[0], []).append(line)
        files = {f"{f}/metadata.jsonl": ("\n".join(lines) + "\n").encode() for f, lines in by_folder.items()}
        hub.add_commit(repo_id, files)
        index = Index(folder / "rebuild.sqlite")
        repo = HubRepo(repo_id, None, folder / "hub-cache", endpoint=hub.url)
        queue = PublishQueue(folder / "publish.sqlite")
        sync = IndexSync(repo, index, lambda got: queue.mark_published(got, None))
        t = time.perf_counter()
        added = sync.sync()
        seconds = time.perf_counter() - t
        assert added == size == index.count(), (added, index.count())
        t = time.perf_counter()
        assert sync.sync() == 0
        again = time.perf_counter() - t
    return {
        "rows": size,
        "metadata_files": len(files),
        "rebuild_s": round(seconds, 2),
        "rows_per_s": round(size / seconds),
        "restart_nothing_new_s": round(again, 3),
    }


class SimClock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def bench_commits(jobs: int, rates_per_min: list[float], every: float, folder: Path) -> list[dict]:
    """Jobs finish at a Poisson rate; the publisher commits on a simulated clock."""
    results = []
    for rate in rates_per_min:
        rng = random.Random(int(rate * 1000))
        with HubServer() as hub:
            work = Path(tempfile.mkdtemp(dir=folder))
            clock = SimClock(1_760_000_000.0)
            dataset = LocalDataset(work / "dataset")
            repo = HubRepo("bench/commits", hub.token, work / "hub-cache", endpoint=hub.url)
            queue = PublishQueue(work / "publish.sqlite")
            publisher = Publisher(repo, dataset, queue, Index(work / "index.sqlite"), every, clock=clock)
            arrivals, t = [], clock.now
            for _ in range(jobs):
                t += rng.expovariate(rate / 60)
                arrivals.append(t)
            done, log = 0, []
            while True:
                while done < jobs and arrivals[done] <= clock.now:
                    gid = f"{int(arrivals[done] * 1000):012x}{rng.getrandbits(48):012x}"
                    generation = {
                        "id": gid,
                        "created": arrivals[done],
                        "prompt": f"job {done}",
                        "backend": "preview",
                        "model": "preview",
                        "seed": done,
                        "width": 64,
                        "height": 64,
                        "num_frames": 2,
                        "fps": 8,
                    }
                    publisher.enqueue(dataset.write(generation, b"mp4", b"jpg"))
                    done += 1
                wait = publisher.step()
                if publisher.last_commit and (not log or log[-1] != publisher.last_commit["at"]):
                    log.append(publisher.last_commit["at"])
                if done == jobs and wait is None:
                    break
                upcoming = [clock.now + wait] if wait is not None else []
                if done < jobs:
                    upcoming.append(arrivals[done])
                clock.now = max(clock.now, min(upcoming))
            commits = hub.commits("bench/commits")
            published = len(hub.metadata_rows("bench/commits"))
            span_h = (arrivals[-1] - arrivals[0]) / 3600
            assert len(log) == len(commits), (len(log), len(commits))
            busiest = max(sum(1 for t in log if s <= t < s + 3600) for s in log) if log else 0
            assert published == jobs, (published, jobs)
            results.append(
                {
                    "jobs_per_min": rate,
                    "jobs": jobs,
                    "commits": len(commits),
                    "commits_per_1000_jobs": round(len(commits) * 1000 / jobs, 1),
                    "max_commits_in_any_hour": busiest,
                    "simulated_hours": round(span_h, 2),
                    "min_gap_between_commits_s": round(min(b - a for a, b in zip(log, log[1:], strict=False)), 1)
                    if len(log) > 1
                    else None,
                }
            )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--rebuild-rows", type=int, default=100_000)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--rates", type=float, nargs="+", default=[1, 10, 100, 1000])
    parser.add_argument("--skip-rebuild", action="store_true")
    parser.add_argument("--skip-commits", action="store_true")
    args = parser.parse_args()

    result: dict = {
        "sqlite": sqlite3.sqlite_version,
        "targets": {"first_page_p50_ms": 50, "search_p50_ms": 100, "rebuild_100k_s": 30},
    }
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        result["latency"] = []
        for size in args.sizes:
            result["latency"].append(bench_latency(size, folder))
            print(json.dumps(result["latency"][-1]), flush=True)
        if not args.skip_rebuild:
            result["rebuild"] = bench_rebuild(args.rebuild_rows, folder)
            print(json.dumps(result["rebuild"]), flush=True)
        if not args.skip_commits:
            result["commits"] = bench_commits(args.jobs, args.rates, 60.0, folder)
            print(json.dumps(result["commits"]), flush=True)
    print(f"written to {record('gallery', result)}")


if __name__ == "__main__":
    main()
