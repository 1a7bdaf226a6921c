"""The load-once effect on the CPU: first vs second job on a tiny checkpoint through a real worker.

    python bench/models_load_once.py [--repeat 3]

Builds the tiny random-weight pipelines of the four families (tests/tiny_pipelines.py), starts a
real redis-server, one CPU worker serving all four and the app, then per family submits two
identical jobs (64x64, 2 steps) and records each job's run time and the backend's load time.
Writes bench/results/models_load_once_cpu.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import Processes, free_port, start_app, wait_for  # noqa: E402
from tests.tiny_pipelines import FAMILIES, save_tiny  # noqa: E402

FRAMES = {"cogvideox": 9, "ltx-video": 9, "mochi": 7, "wan": 9}


def job_timings(app, family: str, seed: int) -> dict:
    body = dict(
        prompt="a red boat on the sea",
        backend=family,
        width=64,
        height=64,
        num_frames=FRAMES[family],
        steps=2,
        seed=seed,
    )
    answer = app.submit(**body)
    answer.raise_for_status()
    status = app.wait_done(answer.json()["id"], timeout=300)
    if status["status"] != "succeeded":
        raise SystemExit(f"{family} job failed: {status}")
    return app.client.get(f"/api/v1/generations/{answer.json()['id']}").json()["timings"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="fresh workers per family (the median is reported)")
    parser.add_argument("--out", default=str(ROOT / "bench/results/models_load_once_cpu.json"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dailies-bench-"))
    redis_binary = shutil.which("redis-server") or sys.exit("redis-server is not installed")
    port = free_port()
    redis = subprocess.Popen(
        [
            redis_binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(work),
        ],
        stdout=subprocess.DEVNULL,
    )
    redis_url = f"redis://127.0.0.1:{port}/0"
    runs: dict[str, list[dict]] = {f: [] for f in FAMILIES}
    try:
        from redis import Redis

        wait_for(lambda: _pings(Redis.from_url(redis_url)), what="redis-server")
        models = {f: save_tiny(f, work / "models") for f in FAMILIES}
        env = {"DAILIES_DEVICE": "cpu", "DAILIES_USER_MAX_ACTIVE": "50"}
        env.update({"DAILIES_MODEL_" + f.upper().replace("-", "_"): str(p) for f, p in models.items()})
        for i in range(args.repeat):
            for family in FAMILIES:
                # A fresh worker per family and round, so its first job pays the import and the load.
                processes = Processes(work)
                try:
                    processes.worker(redis_url, backends=family, **env)
                    app = start_app(processes, work / f"app-{i}-{family}", redis_url)
                    first, second = job_timings(app, family, 1), job_timings(app, family, 2)
                    runs[family].append({"first": first, "second": second})
                finally:
                    processes.stop_all()
    finally:
        redis.terminate()
        redis.wait(10)
        shutil.rmtree(work, ignore_errors=True)

    summary = {}
    for family, rounds in runs.items():
        first = statistics.median(r["first"]["run_s"] for r in rounds)
        second = statistics.median(r["second"]["run_s"] for r in rounds)
        summary[family] = {
            "first_job_run_s": round(first, 3),
            "second_job_run_s": round(second, 3),
            "ratio_first_to_second": round(first / second, 1),
            "first_job_load_s": round(statistics.median(r["first"]["load_s"] for r in rounds), 3),
            "second_job_load_s": round(statistics.median(r["second"]["load_s"] for r in rounds), 3),
        }
    result = {
        "what": "first vs second job on one worker, tiny random-weight checkpoint, 64x64, 2 steps, CPU",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()},
        "versions": {p: version(p) for p in ("torch", "diffusers", "transformers")},
        "repeat": args.repeat,
        "results": summary,
        "runs": runs,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return 0


def _pings(redis) -> bool:
    try:
        return redis.ping()
    except Exception:
        return False


if __name__ == "__main__":
    sys.exit(main())
