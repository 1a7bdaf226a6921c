"""The load-once effect on the CPU: first vs second job on a tiny checkpoint through a real worker.

    python -m bench.models_load_once [--repeat 3]

Builds the tiny random-weight pipelines of the four families (tests/tiny_pipelines.py), starts a
real redis-server, then per family and round a fresh CPU worker and the app, and submits two
identical jobs (64x64, 2 steps, different seeds). The first job pays torch's import and the
pipeline load; the second finds the pipeline resident. Records bench/results/models_load_once_cpu.json.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
from importlib.metadata import version
from pathlib import Path

from bench.common import record
from tests.harness import App, Processes, start_app, start_redis_server
from tests.tiny_pipelines import FAMILIES, save_tiny, tiny_job


def job_timings(app: App, family: str, seed: int) -> dict:
    answer = app.submit(**tiny_job(family, prompt="a red boat on the sea", seed=seed))
    answer.raise_for_status()
    status = app.wait_done(answer.json()["id"], timeout=300)
    if status["status"] != "succeeded":
        raise SystemExit(f"{family} job failed: {status}")
    return app.client.get(f"/api/v1/generations/{answer.json()['id']}").json()["timings"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="fresh workers per family (medians are reported)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dailies-bench-"))
    redis, url = start_redis_server(work)
    runs: dict[str, list[dict]] = {f: [] for f in FAMILIES}
    try:
        models = {f: save_tiny(f, work / "models") for f in FAMILIES}
        env = {
            "DAILIES_DEVICE": "cpu",
            **{"DAILIES_MODEL_" + f.upper().replace("-", "_"): str(p) for f, p in models.items()},
        }
        for i in range(args.repeat):
            for family in FAMILIES:
                # A fresh worker per family and round, so its first job pays the import and the load.
                procs = Processes(work)
                try:
                    procs.worker(url, backends=family, **env)
                    app = start_app(procs, work / f"app-{i}-{family}", url, DAILIES_USER_MAX_ACTIVE="50")
                    runs[family].append({"first": job_timings(app, family, 1), "second": job_timings(app, family, 2)})
                finally:
                    procs.stop_all()
    finally:
        redis.terminate()
        redis.wait(10)
        shutil.rmtree(work, ignore_errors=True)

    results = {}
    for family, rounds in runs.items():
        first = statistics.median(r["first"]["run_s"] for r in rounds)
        second = statistics.median(r["second"]["run_s"] for r in rounds)
        results[family] = {
            "first_job_run_s": round(first, 3),
            "second_job_run_s": round(second, 3),
            "ratio_first_to_second": round(first / second, 1),
            "first_job_load_s": round(statistics.median(r["first"]["load_s"] for r in rounds), 3),
            "second_job_load_s": round(statistics.median(r["second"]["load_s"] for r in rounds), 3),
        }
    record(
        "models_load_once_cpu",
        {
            "what": "first vs second job on one worker; tiny random-weight checkpoint, 64x64, 2 steps, CPU",
            "versions": {p: version(p) for p in ("torch", "diffusers", "transformers")},
            "repeat": args.repeat,
            "results": results,
            "runs": runs,
        },
    )


if __name__ == "__main__":
    main()
