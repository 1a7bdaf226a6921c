"""Takedown: reports, and owners hiding or removing a generation from the gallery, the dataset
folder and the Hub dataset, for good (the real app and worker, a real Redis, the loopback Hub)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import httpx
import pytest

from dailies.app.dataset import Generation, LocalDataset
from dailies.app.errors import ApiError
from dailies.app.hub import HubRepo
from dailies.app.index import GalleryQuery, Index
from dailies.app.limits import Window
from dailies.app.publisher import Publisher, PublishQueue
from dailies.app.takedown import REASON_MAX, State, Takedown, Tombstones, reason_of
from dailies.contract.settings import Settings
from tests.conftest import App, Processes, start_app, wait_for
from tests.hub_server import HubServer
from tests.test_hub import REPO, generate, hub_env, publisher, remote_ids

OWNER = {"authorization": "Bearer hf_owner_token"}
STRANGER = {"authorization": "Bearer hf_stranger_token"}


@pytest.fixture
def hub() -> Iterator[HubServer]:
    with HubServer() as server:
        server.users.update({"hf_owner_token": "Boss", "hf_stranger_token": "stranger"})
        yield server


def local_rows(app: App) -> dict[str, dict]:
    """Every row of the app's dataset folder, by id, with its video's path in the folder."""
    return {r["id"]: r for r in LocalDataset(app.data / "dataset").rows()}


def gallery_ids(app: App, q: str) -> set[str]:
    return {g["id"] for g in app.client.get("/api/v1/generations", params={"q": q}).json()["items"]}


def assert_gone(app: App, generation_id: str, video_path: str) -> None:
    """Every address of a taken-down generation answers 410, and no gallery lists it."""
    answer = app.client.get(f"/api/v1/generations/{generation_id}")
    assert answer.status_code == 410 and answer.json()["error"]["code"] == "gone", answer.text
    assert generation_id not in gallery_ids(app, "lake")
    assert generation_id not in {g["id"] for g in app.client.get("/api/v1/generations").json()["items"]}
    for path in (f"/g/{generation_id}", f"/g/{generation_id}/player"):
        page = app.client.get(path)
        assert page.status_code == 410 and "taken down" in page.text, path
    assert app.client.get(f"/media/{video_path}").status_code == 410


def restart(processes: Processes, tmp_path: Path, app: App, redis_url: str, rebuild: bool, **env: str) -> App:
    """The app stopped and started again on the same data folder (with `rebuild`: its index deleted)."""
    app.proc.stop()
    if rebuild:
        for path in app.data.glob("index.sqlite*"):
            path.unlink()
    return start_app(processes, tmp_path, redis_url, **env)


@pytest.mark.hub
def test_removed_generation_leaves_gallery_dataset_and_hub_for_good(
    hub: HubServer, processes: Processes, tmp_path: Path, redis_url: str
) -> None:
    processes.worker(redis_url)
    env = hub_env(hub, every=0.2, DAILIES_OWNERS="boss")
    app = start_app(processes, tmp_path, redis_url, **env)
    kept, bad = generate(app, ["quiet lake at noon", "quiet lake at night"])
    wait_for(lambda: set(remote_ids(hub)) == {kept, bad}, 60, what="both on the Hub")
    row = local_rows(app)[bad]

    reported = app.client.post(f"/api/v1/generations/{bad}/report", json={"reason": "not mine to share"})
    assert reported.status_code == 201, reported.text
    listed = app.client.get("/api/v1/reports", headers=OWNER).json()["reports"]
    assert [(r["generation_id"], r["reason"], r["state"]) for r in listed] == [(bad, "not mine to share", "visible")]

    hub.commit_429 = 1000  # the Hub takes no commit for now: its copy stays until the end
    removed = app.client.delete(f"/api/v1/generations/{bad}", headers=OWNER)
    assert removed.status_code == 200 and removed.json() == {"id": bad, "state": "removed"}
    assert_gone(app, bad, row["video_path"])
    assert set(local_rows(app)) == {kept}
    dataset = app.data / "dataset"
    assert not (dataset / row["video_path"]).exists() and not (dataset / row["poster"]).exists()
    assert (dataset / local_rows(app)[kept]["video_path"]).exists()
    assert app.client.get("/api/v1/reports", headers=OWNER).json()["reports"][0]["state"] == "removed"
    wait_for(lambda: "429" in (publisher(app)["last_error"] or ""), what="the removal's commit refused")

    # A restart that rebuilds the index from the dataset and from the Hub, which still holds it.
    assert bad in remote_ids(hub)
    app = restart(processes, tmp_path, app, redis_url, rebuild=True, **env)
    wait_for(lambda: app.client.get("/api/v1/healthz").json()["index_sync"]["sha"], what="the index sync")
    wait_for(lambda: publisher(app)["last_error"], what="the removal tried again")
    assert app.client.get("/api/v1/healthz").json()["generations"] == 1
    assert_gone(app, bad, row["video_path"])
    assert gallery_ids(app, "lake") == {kept}

    # Once the Hub takes commits again, the removal lands: files and row gone, the other intact.
    hub.commit_429 = 0
    wait_for(lambda: bad not in remote_ids(hub), 60, what="the removal on the Hub")
    files = hub.files(REPO)
    assert row["video_path"] not in files and row["poster"] not in files
    assert remote_ids(hub) == [kept] and local_rows(app)[kept]["video_path"] in files
    assert hub.commits(REPO)[-1].message == "Remove 1 generation"
    wait_for(lambda: publisher(app)["removals"] == 0, what="the removal marked done after its commit")


@pytest.mark.hub
def test_only_owners_take_down_and_reports_are_limited(
    hub: HubServer, processes: Processes, tmp_path: Path, redis_url: str
) -> None:
    processes.worker(redis_url)
    env = {"HF_ENDPOINT": hub.url, "DAILIES_OWNERS": "boss", "DAILIES_REPORTS_PER_HOUR": "3"}
    app = start_app(processes, tmp_path, redis_url, **env)
    first, second = generate(app, ["still lake one", "still lake two"])
    row = local_rows(app)[first]

    def call(method: str, path: str, headers: dict[str, str] | None = None, **kwargs) -> httpx.Response:
        return app.client.request(method, f"/api/v1{path}", headers=headers, **kwargs)

    def error(answer: httpx.Response) -> tuple[int, str, str | None]:
        body = answer.json()["error"]
        return answer.status_code, body["code"], body["field"]

    report = {"reason": "looks like someone I know"}
    assert error(call("POST", f"/generations/{'0' * 24}/report", json=report)) == (404, "not_found", None)
    assert error(call("POST", "/generations/not-an-id/report", json=report)) == (404, "not_found", None)
    assert error(call("POST", f"/generations/{first}/report", json={"reason": 7})) == (422, "invalid_field", "reason")
    for _ in range(3):
        assert call("POST", f"/generations/{first}/report", json=report).status_code == 201
    limited = call("POST", f"/generations/{second}/report", json=report)
    assert error(limited) == (429, "report_limit", None) and int(limited.headers["retry-after"]) > 3500
    assert call("POST", f"/generations/{second}/report", STRANGER, json=report).status_code == 201  # another visitor

    # Nobody but an owner lists reports, hides or removes; the generations stay.
    for method, path in (
        ("GET", "/reports"),
        ("POST", f"/generations/{first}/hide"),
        ("DELETE", f"/generations/{first}"),
    ):
        assert error(call(method, path)) == (401, "sign_in_required", None), path
        assert error(call(method, path, STRANGER)) == (403, "forbidden", None), path
    assert call("GET", f"/generations/{first}").status_code == 200
    assert gallery_ids(app, "lake") == {first, second}
    assert app.client.get(f"/media/{row['video_path']}").status_code == 200

    # An owner hides one: gone at once, and after a restart that rebuilds the index from the dataset.
    assert call("POST", f"/generations/{first}/hide", OWNER).json() == {"id": first, "state": "hidden"}
    assert_gone(app, first, row["video_path"])
    assert error(call("POST", f"/generations/{first}/report", json=report)) == (410, "gone", None)
    states = {(r["generation_id"], r["state"]) for r in call("GET", "/reports", OWNER).json()["reports"]}
    assert states == {(first, "hidden"), (second, "visible")}
    app = restart(processes, tmp_path, app, redis_url, rebuild=True, **env)
    assert_gone(app, first, row["video_path"])
    assert gallery_ids(app, "lake") == {second} and first in local_rows(app)  # hidden: its files are kept

    # Then removes it: the dataset folder lets it go too, and a restart keeps it gone.
    assert call("DELETE", f"/generations/{first}", OWNER).json() == {"id": first, "state": "removed"}
    assert set(local_rows(app)) == {second} and not (app.data / "dataset" / row["video_path"]).exists()
    app = restart(processes, tmp_path, app, redis_url, rebuild=False, **env)
    assert_gone(app, first, row["video_path"])
    assert call("GET", f"/generations/{second}").status_code == 200


@pytest.mark.hub
def test_a_comparison_with_a_hidden_generation_answers_410(
    hub: HubServer, processes: Processes, tmp_path: Path, redis_url: str
) -> None:
    """A comparison Redis has forgotten (read back from the dataset's group column) is gone as a
    whole once one of its generations is hidden; the other keeps its own share page."""
    rows = stored(LocalDataset(tmp_path / "data" / "dataset"), 1_760_000_000.0, 2, group="c" * 24)
    app = start_app(processes, tmp_path, redis_url, HF_ENDPOINT=hub.url, DAILIES_OWNERS="boss")
    assert app.client.get(f"/c/{'c' * 24}").status_code == 200
    assert app.client.get(f"/g/{'0' * 24}").status_code == 404
    hidden = app.client.post(f"/api/v1/generations/{rows[0]['id']}/hide", headers=OWNER)
    assert hidden.json() == {"id": rows[0]["id"], "state": "hidden"}
    page = app.client.get(f"/c/{'c' * 24}")
    assert page.status_code == 410 and "This comparison was taken down" in page.text
    assert app.client.get(f"/g/{rows[1]['id']}").status_code == 200


@pytest.mark.browser
def test_a_visitor_reports_from_the_detail_view(browser, processes: Processes, tmp_path: Path, redis_url: str) -> None:
    processes.worker(redis_url)
    app = start_app(processes, tmp_path, redis_url, DAILIES_REPORTS_PER_HOUR="1")
    (only,) = generate(app, ["a lake to report"])
    page = browser.new_page()
    page.goto(f"{app.url}/?g={only}")
    prompt = page.locator("#detail-prompt textarea")
    wait_for(lambda: prompt.count() and prompt.input_value() == "a lake to report", 30, what="the detail view")
    page.locator("#detail-report").get_by_text("Report").click()
    reason, status = page.locator("#report-reason textarea"), page.locator("#report-status")
    for text, answer in (("not for a public gallery", "Thank you"), ("and again", "too many reports")):
        reason.fill(text)
        page.locator("#report-send").click()
        wait_for(lambda: answer in status.inner_text(), 15, what=answer)  # noqa: B023
    assert reason.input_value() == "and again"  # a refused report keeps its text
    with sqlite3.connect(app.data / "takedown.sqlite") as db:
        assert db.execute("SELECT generation_id, reason, reporter FROM reports").fetchall() == [
            (only, "not for a public gallery", None)
        ]
    page.close()


@pytest.mark.unit
@pytest.mark.parametrize(
    "body",
    [None, [], "text", {}, {"reason": 7}, {"reason": "  \n "}, {"reason": "x" * (REASON_MAX + 1)},
     {"reason": "bell \x07"}, {"reason": "half \ud800"}, {"reason": "ok", "extra": 1}],
)  # fmt: skip
def test_a_reason_is_short_plain_text(body: object) -> None:
    with pytest.raises(ApiError) as refused:
        reason_of(body)
    assert refused.value.status == 422 and refused.value.field in ("reason", "extra")


@pytest.mark.unit
def test_a_reason_keeps_its_lines() -> None:
    assert reason_of({"reason": "  first line\n\tsecond  "}) == "first line\n\tsecond"
    assert reason_of({"reason": "é" * REASON_MAX}) == "é" * REASON_MAX


def stored(dataset: LocalDataset, created: float, n: int, group: str = "") -> list[dict]:
    """`n` rows written to `dataset`, made in comparison `group` ("" for none)."""
    rows = []
    for i in range(n):
        g = Generation(
            id=f"{int(created * 1000) + i:012x}{i:012x}", prompt=f"pale lake {i}", negative_prompt="",
            backend="preview", seed=i, params={}, group=group, created=created,
            model="preview", width=8, height=8, num_frames=1, fps=1, has_audio=False, timings={},
        )  # fmt: skip
        rows.append(dataset.write(g, f"mp4 {i}".encode(), f"jpg {i}".encode()))
    return rows


@pytest.mark.unit
def test_tombstones_keep_a_removed_row_out_of_the_folder_and_the_index(tmp_path: Path) -> None:
    dataset = LocalDataset(tmp_path / "dataset")
    rows = stored(dataset, 1_760_000_000.0, 3, group="a" * 24)
    tombstones = Tombstones(tmp_path / "takedown.sqlite")
    index = Index(tmp_path / "index.sqlite", taken_down=tombstones)
    index.add(dataset.rows())

    tombstones.put(rows[0], State.REMOVED, "boss")
    index.remove(rows[0]["id"])
    dataset.remove(rows[0])
    dataset.remove(rows[0])  # again, as a restart finishing it does: nothing changes
    assert [r["id"] for r in dataset.rows()] == [rows[1]["id"], rows[2]["id"]]
    assert not (dataset.root / rows[0]["video_path"]).exists() and not (dataset.root / rows[0]["poster"]).exists()
    assert (dataset.root / rows[1]["video_path"]).read_bytes() == b"mp4 1"
    found, _ = index.page(GalleryQuery(q="pale"))
    assert {r["id"] for r in found} == {rows[1]["id"], rows[2]["id"]} and index.count() == 2

    # A hidden row keeps its files, but neither it nor the removed one comes back into an index
    # rebuilt from the folder or from the Hub's copy, even after the tombstones are reopened.
    tombstones.put(rows[1], State.HIDDEN, "boss")
    tombstones.put(rows[0], State.HIDDEN, "boss")  # a removed one is not hidden back
    reopened = Tombstones(tmp_path / "takedown.sqlite")
    assert reopened.state(rows[0]["id"]) == State.REMOVED and reopened.state(rows[1]["id"]) == State.HIDDEN
    assert reopened.group_gone("a" * 24) and not reopened.group_gone("b" * 24)
    rebuilt = Index(tmp_path / "rebuilt.sqlite", taken_down=reopened)
    assert rebuilt.add([*dataset.rows(), rows[0]]) == 1 and rebuilt.get(rows[2]["id"]) is not None

    # The last row of a folder takes its metadata.jsonl with it.
    for row in rows[1:]:
        dataset.remove(row)
    assert not list(dataset.root.glob("data/*/*/metadata.jsonl"))


@pytest.mark.unit
def test_a_removal_a_stop_interrupted_is_finished_on_start(tmp_path: Path) -> None:
    dataset = LocalDataset(tmp_path / "dataset")
    rows = stored(dataset, 1_760_000_000.0, 2)
    tombstones = Tombstones(tmp_path / "takedown.sqlite")
    index = Index(tmp_path / "index.sqlite", taken_down=tombstones)
    index.add(dataset.rows())
    tombstones.put(rows[0], State.REMOVED, "boss")  # the app stopped right after the tombstone
    Takedown(tombstones, index, dataset, None, cast(Window, None), Settings.from_env({})).resume()
    assert [r["id"] for r in dataset.rows()] == [rows[1]["id"]] and index.count() == 1
    assert not (dataset.root / rows[0]["video_path"]).exists()


@pytest.mark.hub
def test_publisher_deletes_a_removed_row_from_the_hub_once(hub: HubServer, tmp_path: Path) -> None:
    """The removal commit is made from the Hub's own metadata (this replica has no local copy of
    the folder), deletes only the removed row's files, and is not sent again after a lost answer."""
    writer = LocalDataset(tmp_path / "writer")
    rows = stored(writer, 1_760_000_000.0, 3)
    repo = HubRepo(REPO, hub.token, tmp_path / "hub-cache", endpoint=hub.url)
    sent = Publisher(repo, writer, PublishQueue(tmp_path / "p1.sqlite"), Index(tmp_path / "i1.sqlite"), 0)
    for row in rows:
        sent.enqueue(row)
    assert sent.publish_once()
    before = hub.files(REPO)

    replica = Publisher(
        repo, LocalDataset(tmp_path / "replica"), PublishQueue(tmp_path / "p2.sqlite"), Index(tmp_path / "i2.sqlite"), 0
    )
    replica.remove(rows[1])
    replica.remove(rows[1])
    hub.lose_commit_answers = 1
    with pytest.raises(Exception, match="502"):
        replica.publish_once()
    assert replica.publish_once() is None  # it landed: nothing is left to delete, nothing is sent
    assert [c.message for c in hub.commits(REPO)] == ["Add 3 generations", "Remove 1 generation"]
    after = hub.files(REPO)
    assert set(before) - set(after) == {rows[1]["video_path"], rows[1]["poster"]}
    assert [r["id"] for r in hub.metadata_rows(REPO)] == [rows[0]["id"], rows[2]["id"]]
    assert replica.queue.waiting() == 0
