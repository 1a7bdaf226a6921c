"""The Hub dataset: the real app and worker publish through the real huggingface_hub client to a
loopback server that speaks the Hub's endpoints; the index is rebuilt from what it holds."""

from __future__ import annotations

import json
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from gradio_client import Client
from redis import Redis

from dailies.app.dataset import COLUMNS, Generation, LocalDataset
from dailies.app.hub import HubRepo
from dailies.app.index import Index
from dailies.app.publisher import HOURLY_MAX, Publisher, PublishQueue
from tests.conftest import App, Processes, start_app, wait_for
from tests.hub_server import HubServer

pytestmark = pytest.mark.hub
REPO = "user/dailies-test"


@pytest.fixture
def hub() -> Iterator[HubServer]:
    with HubServer() as server:
        yield server


def hub_env(hub: HubServer, every: float = 1.0, **extra: str) -> dict[str, str]:
    return {
        "HF_ENDPOINT": hub.url,
        "HF_TOKEN": hub.token,
        "HF_DATASET_REPO": REPO,
        "DAILIES_COMMIT_EVERY": str(every),
        "DAILIES_USER_MAX_ACTIVE": "20",
        **extra,
    }


def generate(app: App, prompts: list[str]) -> list[str]:
    ids = [app.submit(prompt=p, backend="preview", num_frames=2, width=64, height=64).json()["id"] for p in prompts]
    for i in ids:
        assert app.wait_done(i)["status"] == "succeeded"
    return ids


def remote_ids(hub: HubServer) -> list[str]:
    return [r["id"] for r in hub.metadata_rows(REPO)] if REPO in hub.repos else []


def assert_published_once(hub: HubServer, ids: list[str]) -> None:
    """Every id is listed exactly once in the repo's metadata, with its video and poster present,
    and every row has the same columns with the same types."""
    rows = hub.metadata_rows(REPO)
    counts = Counter(r["id"] for r in rows)
    assert set(counts) == set(ids) and set(counts.values()) == {1}, counts
    files = hub.files(REPO)
    videos = [p for p in files if p.endswith(".mp4")]
    assert len(videos) == len(ids)
    for path in (p for p in files if p.endswith("metadata.jsonl")):
        folder = path.rsplit("/", 1)[0]
        for line in files[path].decode().splitlines():
            row = json.loads(line)
            assert list(row) == list(COLUMNS)
            assert all(type(row[k]) is t for k, t in COLUMNS.items()), row
            assert f"{folder}/{row['file_name']}" in files and row["poster"] in files
            assert not row["poster"].startswith("data/")  # posters stay outside the video folders


def publisher(app: App) -> dict:
    return app.client.get("/api/v1/healthz").json()["publisher"]


def test_nine_generations_through_an_outage_land_once_in_few_commits(
    hub: HubServer, processes: Processes, tmp_path: Path, redis_url: str, redis: Redis
) -> None:
    processes.worker(redis_url)
    app = start_app(processes, tmp_path, redis_url, **hub_env(hub, every=2))
    before = generate(app, [f"harbour crane at dawn {i}" for i in range(3)])
    wait_for(lambda: len(remote_ids(hub)) == 3, what="the first generations on the Hub")

    hub.down = True
    during = generate(app, [f"harbour crane in the storm {i}" for i in range(4)])
    failing = wait_for(lambda: (p := publisher(app))["last_error"] and p, what="the publisher to notice the outage")
    assert failing["pending"] == 4 and "503" in failing["last_error"] and failing["next_attempt_in_s"] is not None
    assert len(remote_ids(hub)) == 3

    hub.down = False
    after = generate(app, [f"harbour crane in calm weather {i}" for i in range(2)])
    ids = before + during + after
    wait_for(lambda: len(remote_ids(hub)) >= 9 and publisher(app)["pending"] == 0, 60, what="all nine on the Hub")
    assert_published_once(hub, ids)
    commits = hub.commits(REPO)
    assert len(commits) <= 5, [c.message for c in commits]  # batched: far fewer commits than rows
    assert all(b.at - a.at >= 2 * 0.9 for a, b in zip(commits, commits[1:], strict=False))
    assert publisher(app)["last_error"] is None

    # The gallery finds them, and streams a public dataset's media from the Hub.
    found = app.client.get("/api/v1/generations", params={"q": "harbour crane", "limit": 20}).json()["items"]
    assert sorted(g["id"] for g in found) == sorted(ids)
    assert all(g["video_url"].startswith(f"{hub.url}/datasets/{REPO}/resolve/") for g in found)
    video = app.client.get(found[0]["video_url"])
    assert video.status_code == 200 and video.content == hub.files(REPO)[found[0]["video_url"].split("/main/")[1]]
    storm = app.client.get("/api/v1/generations", params={"q": "storm"}).json()["items"]
    assert {g["id"] for g in storm} == set(during)
    listed = Client(app.url, verbose=False).predict("harbour crane", "", api_name="/gallery")  # the page's search
    assert sorted(i["id"] for i in listed) == sorted(ids)

    # The token never reaches the dataset, Redis or the logs.
    assert not any(hub.token.encode() in content for content in hub.files(REPO).values())
    assert not any(hub.token.encode() in (redis.dump(k) or b"") for k in redis.keys("*"))
    app.proc.stop()
    assert hub.token not in app.proc.output()
    local = [p for p in (tmp_path / "data" / "dataset").rglob("*") if p.is_file()]
    assert local and not any(hub.token.encode() in p.read_bytes() for p in local)


def test_rate_limit_and_a_lost_commit_answer_publish_nothing_twice(
    hub: HubServer, processes: Processes, tmp_path: Path, redis_url: str
) -> None:
    processes.worker(redis_url)
    hub.commit_429 = 2
    hub.lose_commit_answers = 1  # after the 429s, a commit lands but its answer is a 502
    app = start_app(processes, tmp_path, redis_url, **hub_env(hub, every=0.2))
    ids = generate(app, [f"lighthouse {i}" for i in range(3)])
    wait_for(
        lambda: publisher(app)["pending"] == 0 and hub.commit_429 == 0 and hub.lose_commit_answers == 0,
        60,
        what="the publisher to get through",
    )
    more = generate(app, ["lighthouse again"])
    wait_for(lambda: len(remote_ids(hub)) == 4, 60, what="the fourth generation")
    assert_published_once(hub, ids + more)
    # The commit whose answer was lost is not sent again: every video was added by one commit only.
    added = Counter(p for c in hub.commits(REPO) for p in c.paths if p.endswith(".mp4"))
    assert set(added.values()) == {1}


def test_restart_with_pending_rows_publishes_them(
    hub: HubServer, processes: Processes, tmp_path: Path, redis_url: str
) -> None:
    processes.worker(redis_url)
    hub.down = True
    app = start_app(processes, tmp_path, redis_url, **hub_env(hub, every=0.2))
    ids = generate(app, ["night ferry 1", "night ferry 2", "night ferry lost"])
    wait_for(lambda: publisher(app)["pending"] == 3, what="three pending rows")
    app.proc.stop(signal.SIGTERM)
    # A row whose local video is gone cannot be sent; it must not block the others.
    next((tmp_path / "data" / "dataset" / "data").rglob(f"{ids.pop()}.mp4")).unlink()

    hub.down = False
    again = start_app(processes, tmp_path, redis_url, **hub_env(hub, every=0.2))
    wait_for(lambda: len(remote_ids(hub)) == 2 and publisher(again)["pending"] == 0, 60, what="the pending rows")
    more = generate(again, ["night ferry 3"])
    wait_for(lambda: len(remote_ids(hub)) == 3, 60, what="the new row")
    assert_published_once(hub, ids + more)


def test_fresh_replica_rebuilds_its_index_from_the_hub(
    hub: HubServer, processes: Processes, tmp_path: Path, redis_url: str
) -> None:
    processes.worker(redis_url)
    first = start_app(processes, tmp_path, redis_url, **hub_env(hub, every=0.2))
    ids = generate(first, ["glacier calving", "glacier at night", "desert wind"])
    wait_for(lambda: len(remote_ids(hub)) == 3, 60, what="the rows on the Hub")
    first.proc.stop()

    # A new replica: empty data folder, no token (it only reads the public dataset).
    fresh = tmp_path / "fresh"
    env = hub_env(hub, DAILIES_DATA=str(fresh))
    del env["HF_TOKEN"]
    replica = start_app(processes, tmp_path, redis_url, **env)
    wait_for(lambda: replica.client.get("/api/v1/healthz").json()["generations"] == 3, what="the rebuilt index")
    health = replica.client.get("/api/v1/healthz").json()
    assert health["index_sync"]["rows_added"] == 3 and health["publisher"]["enabled"] is False
    found = replica.client.get("/api/v1/generations", params={"q": "glacier"}).json()["items"]
    assert sorted(g["id"] for g in found) == sorted(ids[:2])
    assert all(g["video_url"].startswith(hub.url) for g in found)
    assert not (fresh / "dataset" / "data").exists()  # nothing copied: the Hub is the record
    replica.proc.stop()

    # Restarting with nothing new on the Hub reads no metadata file again.
    hub.requests.clear()
    again = start_app(processes, tmp_path, redis_url, **env)
    wait_for(lambda: again.client.get("/api/v1/healthz").json()["index_sync"]["sha"], what="the sync")
    assert again.client.get("/api/v1/healthz").json()["generations"] == 3
    assert not [r for r in hub.requests if "/resolve/" in r[1]]
    again.proc.stop()

    # Another replica commits a batch: the next start fetches that one metadata file only.
    row = {**hub.metadata_rows(REPO)[0], "id": "f" * 24, "file_name": "f" * 24 + ".mp4", "prompt": "glacier lake"}
    folder = f"data/{row['created_at'][:10]}/{'e' * 24}"
    hub.add_commit(REPO, {f"{folder}/metadata.jsonl": (json.dumps(row) + "\n").encode()}, "from elsewhere")
    hub.requests.clear()
    third = start_app(processes, tmp_path, redis_url, **env)
    wait_for(lambda: third.client.get("/api/v1/healthz").json()["generations"] == 4, what="the new row")
    fetched = {path for method, path in hub.requests if method == "GET" and "/resolve/" in path}
    assert fetched == {f"/datasets/{REPO}/resolve/{hub.repos[REPO].sha}/{folder}/metadata.jsonl"}
    assert len(third.client.get("/api/v1/generations", params={"q": "glacier"}).json()["items"]) == 3


def test_private_dataset_media_is_served_by_the_app(
    hub: HubServer, processes: Processes, tmp_path: Path, redis_url: str
) -> None:
    processes.worker(redis_url)
    app = start_app(processes, tmp_path, redis_url, **hub_env(hub, every=0.2))
    ids = generate(app, ["private orchard"])
    wait_for(lambda: len(remote_ids(hub)) == 1, 60, what="the row on the Hub")
    app.proc.stop()
    hub.repos[REPO].private = True

    replica = start_app(processes, tmp_path, redis_url, **hub_env(hub, DAILIES_DATA=str(tmp_path / "fresh")))
    wait_for(lambda: replica.client.get("/api/v1/healthz").json()["generations"] == 1, what="the rebuilt index")
    item = replica.client.get(f"/api/v1/generations/{ids[0]}").json()
    assert item["video_url"].startswith("/media/data/") and item["poster_url"].startswith("/media/posters/")
    video = replica.client.get(item["video_url"])
    assert video.status_code == 200 and video.content == hub.files(REPO)[item["video_url"][len("/media/") :]]
    part = replica.client.get(item["video_url"], headers={"Range": "bytes=0-9"})  # browsers seek with ranges
    assert part.status_code == 206 and part.content == video.content[:10]
    # Encoded, so that no client normalises the dots away before they reach the server.
    for path in (
        "/media/%2e%2e/publish.sqlite",
        "/media/%2E%2E%2Fpublish.sqlite",
        "/media/..%2fpublish.sqlite",
        "/media/data/%2e%2e/%2e%2e/publish.sqlite",
        "/media/posters/%2e%2e%2f%2e%2e%2fapp.lock",
        "/media/%252e%252e/publish.sqlite",
    ):
        request = replica.client.build_request("GET", path)
        assert b"%2" in request.url.raw_path.lower()  # sent as written
        answer = replica.client.send(request)
        assert answer.status_code == 404 and b"SQLite" not in answer.content, path


def test_layout_loads_with_the_video_folder_builder(
    hub: HubServer, processes: Processes, tmp_path: Path, redis_url: str
) -> None:
    processes.worker(redis_url)
    app = start_app(processes, tmp_path, redis_url, **hub_env(hub, every=0.5))
    ids = generate(app, ["red kite", "blue heron"])
    wait_for(lambda: len(remote_ids(hub)) == 2, 60, what="the rows on the Hub")
    generate(app, ["grey wagtail"])
    wait_for(lambda: len(remote_ids(hub)) == 3, 60, what="the third row")
    # Write the remote repo out as a folder and load it the way the viewer would.
    remote = tmp_path / "remote"
    for path, content in hub.files(REPO).items():
        (remote / path).parent.mkdir(parents=True, exist_ok=True)
        (remote / path).write_bytes(content)
    readme = (remote / "README.md").read_text()
    assert '"data/**/*.mp4"' in readme and '"data/**/metadata.jsonl"' in readme
    kinds = Counter(p.suffix for p in (remote / "data").rglob("*") if p.is_file())
    assert kinds.most_common(1)[0][0] == ".mp4" and set(kinds) == {".mp4", ".jsonl"}

    datasets = pytest.importorskip("datasets")
    loaded = datasets.load_dataset(str(remote), split="train", cache_dir=str(tmp_path / "datasets-cache"))
    assert loaded.info.builder_name == "videofolder"
    loaded = loaded.cast_column("video", datasets.Video(decode=False))  # decoding needs torchcodec, not here
    assert sorted(loaded["id"]) == sorted(remote_ids(hub)) and len(loaded) == 3 and ids[0] in loaded["id"]
    assert set(loaded.column_names) == {"video", *COLUMNS} - {"file_name"}
    assert loaded.features["seed"].dtype == "int64" and loaded.features["duration_s"].dtype == "float64"


def test_hourly_commit_budget_holds_even_with_no_interval(hub: HubServer, tmp_path: Path) -> None:
    """DAILIES_COMMIT_EVERY=0 and a job every 30 s: the publisher still makes at most HOURLY_MAX
    commits in any hour (run on a simulated clock against the loopback Hub)."""
    clock = [1_760_000_000.0]
    dataset = LocalDataset(tmp_path / "dataset")
    repo = HubRepo(REPO, hub.token, tmp_path / "hub-cache", endpoint=hub.url)
    queue = PublishQueue(tmp_path / "publish.sqlite")
    publisher = Publisher(repo, dataset, queue, Index(tmp_path / "index.sqlite"), 0, clock=lambda: clock[0])
    commit_times: list[float] = []
    for i in range(130):
        created = clock[0]
        generation = Generation(
            id=f"{int(created * 1000):012x}{i:012x}",
            prompt=f"tick {i}",
            negative_prompt="",
            backend="preview",
            seed=i,
            params={},
            group="",
            created=created,
            model="preview",
            width=8,
            height=8,
            num_frames=1,
            fps=1,
            has_audio=False,
            timings={},
        )
        publisher.enqueue(dataset.write(generation, b"mp4", b"jpg"))
        publisher.step()
        if publisher.last_commit and (not commit_times or commit_times[-1] != publisher.last_commit["at"]):
            commit_times.append(publisher.last_commit["at"])
        clock[0] += 30
    busiest = max(sum(1 for t in commit_times if start <= t < start + 3600) for start in commit_times)
    assert busiest == HOURLY_MAX and len(hub.commits(REPO)) == len(commit_times)
    assert len(remote_ids(hub)) + queue.pending_count() == 130  # the rest waits, nothing is lost
