"""Opt-in: the real Hub. Runs only with HF_TOKEN set (a token that may create and delete a
dataset repo); it publishes two preview generations to a private throwaway repo and deletes it."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import pytest

from tests.conftest import Processes, start_app, wait_for
from tests.test_hub import generate

pytestmark = [
    pytest.mark.hub,
    pytest.mark.live,
    pytest.mark.skipif(not os.environ.get("HF_TOKEN"), reason="HF_TOKEN is not set"),
]


def test_publishes_to_a_real_throwaway_dataset(processes: Processes, tmp_path: Path, redis_url: str) -> None:
    from huggingface_hub import HfApi

    token = os.environ["HF_TOKEN"]
    api = HfApi(token=token)
    repo_id = f"{api.whoami()['name']}/dailies-live-test-{secrets.token_hex(4)}"
    api.create_repo(repo_id, repo_type="dataset", private=True)
    try:
        processes.worker(redis_url)
        env = {"HF_TOKEN": token, "HF_DATASET_REPO": repo_id, "DAILIES_COMMIT_EVERY": "2"}
        if os.environ.get("HF_ENDPOINT"):
            env["HF_ENDPOINT"] = os.environ["HF_ENDPOINT"]
        app = start_app(processes, tmp_path, redis_url, **env)
        ids = generate(app, ["live test: a kite over the dunes", "live test: rain on a tin roof"])

        def published() -> list[str]:
            files = api.list_repo_files(repo_id, repo_type="dataset")
            rows = []
            for path in (f for f in files if f.endswith("metadata.jsonl")):
                local = api.hf_hub_download(repo_id, path, repo_type="dataset", cache_dir=tmp_path / "check")
                rows += [json.loads(line)["id"] for line in Path(local).read_text().splitlines()]
            return rows if len(rows) >= 2 else []

        rows = wait_for(published, 180, interval=3, what="the generations on the Hub")
        assert sorted(rows) == sorted(ids)
        item = app.client.get(f"/api/v1/generations/{ids[0]}").json()
        assert item["video_url"].startswith("/media/")  # private: the app serves it
        assert app.client.get(item["video_url"]).status_code == 200
        app.proc.stop()
        assert token not in app.proc.output()
    finally:
        api.delete_repo(repo_id, repo_type="dataset")
