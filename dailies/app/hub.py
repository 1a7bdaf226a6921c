"""The Hub dataset repo as the app sees it: its URLs, file downloads, and the index rebuild.

The Hub dataset is the source of truth; the index is a view of it. On start the app compares
the repo's commit sha with the one the index last saw and fetches only the metadata files whose
blob id it has not read yet, so a fresh replica fills its gallery from the Hub and a restart
with nothing new costs one request.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from huggingface_hub import HfApi, hf_hub_download, hf_hub_url
from huggingface_hub.errors import RemoteEntryNotFoundError, RepositoryNotFoundError
from huggingface_hub.hf_api import RepoFile

from dailies.app.dataset import GenerationRow, parse_metadata
from dailies.app.index import Index
from dailies.contract.loop import BackgroundLoop

log = logging.getLogger("dailies.app.hub")
REPO_TYPE = "dataset"
SHA_KEY, FILES_KEY = "hub_sha", "hub_files"
DOWNLOAD_THREADS = 8


class HubRepo:
    """One dataset repo. The token stays inside HfApi: it is never logged or stored."""

    def __init__(self, repo_id: str, token: str | None, cache_dir: Path, endpoint: str | None = None) -> None:
        self.repo_id = repo_id
        self.token = token
        self.api = HfApi(endpoint=endpoint, token=token)  # without one, huggingface_hub honours HF_ENDPOINT
        self.cache_dir = cache_dir
        self.private: bool | None = None  # learnt from repo_info

    @property
    def endpoint(self) -> str:
        return self.api.endpoint

    def sha(self) -> str:
        info = self.api.repo_info(self.repo_id, repo_type=REPO_TYPE)
        self.private = bool(info.private)
        return info.sha or ""

    def url(self, path: str) -> str:
        """The public URL of a file (the browser streams it from the Hub)."""
        return hf_hub_url(self.repo_id, path, repo_type=REPO_TYPE, endpoint=self.endpoint)

    def download(self, path: str, revision: str | None = None) -> Path:
        return Path(
            hf_hub_download(
                self.repo_id,
                path,
                repo_type=REPO_TYPE,
                revision=revision,
                token=self.token,
                endpoint=self.endpoint,
                cache_dir=self.cache_dir,
            )
        )

    def files(self, folder: str) -> dict[str, str]:
        """Path -> blob id of every file under a folder (empty when the folder does not exist)."""
        try:
            entries = self.api.list_repo_tree(self.repo_id, path_in_repo=folder, recursive=True, repo_type=REPO_TYPE)
            return {e.path: e.blob_id for e in entries if isinstance(e, RepoFile)}
        except RemoteEntryNotFoundError:
            return {}


class IndexSync:
    """Brings the index up to the repo's current commit, in a background thread on start."""

    def __init__(self, repo: HubRepo, index: Index, on_rows: Callable[[list[GenerationRow]], None]) -> None:
        self.repo, self.index, self.on_rows = repo, index, on_rows
        self.state: dict[str, Any] = {"running": False, "rows_added": 0, "files_read": 0, "error": None, "sha": None}
        self._loop = BackgroundLoop("index-sync", self._run)

    def start(self) -> None:
        self._loop.start()

    def _run(self) -> None:
        """Sync once; the thread then idles (a daemon: the app does not wait for it)."""
        self.state["running"] = True
        try:
            self.sync()
        except RepositoryNotFoundError:
            log.info("dataset %s does not exist yet: nothing to rebuild from", self.repo.repo_id)
        except Exception as exc:  # the gallery still serves the local rows
            self.state["error"] = short_error(exc)
            log.warning("index rebuild from %s failed: %s", self.repo.repo_id, self.state["error"])
        finally:
            self.state["running"] = False

    def sync(self) -> int:
        sha = self.repo.sha()
        self.state["sha"] = sha
        if sha == self.index.get_state(SHA_KEY):
            return 0
        known: dict[str, str] = json.loads(self.index.get_state(FILES_KEY) or "{}")
        remote = self.repo.files("data")
        todo = [p for p, oid in remote.items() if p.endswith("/metadata.jsonl") and known.get(p) != oid]
        added = 0
        with ThreadPoolExecutor(DOWNLOAD_THREADS) as pool:
            for path, rows in zip(todo, pool.map(lambda p: self._read(p, sha), todo), strict=True):
                added += self.index.add(rows)
                self.on_rows(rows)
                known[path] = remote[path]
                self.state["files_read"] += 1
                self.state["rows_added"] = added
        self.index.set_state(FILES_KEY, json.dumps(known))
        self.index.set_state(SHA_KEY, sha)
        log.info("index synced with %s@%s: %d files read, %d rows added", self.repo.repo_id, sha[:8], len(todo), added)
        return added

    def _read(self, path: str, sha: str) -> list[GenerationRow]:
        folder = path.rsplit("/", 1)[0]
        return parse_metadata(folder, self.repo.download(path, revision=sha).read_text(encoding="utf-8"))


def git_blob_oid(content: bytes) -> str:
    """The blob id the Hub lists for a file stored in git (not LFS)."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def short_error(exc: BaseException) -> str:
    """One line for health and logs (huggingface_hub's messages carry no token)."""
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first}"[:300]


def record_files(index: Index, files: Iterable[tuple[str, str]], parent_sha: str, sha: str) -> None:
    """After our own commit: remember the metadata files we wrote, so a restart does not fetch them
    back; move the synced sha forward only if nothing else was committed in between."""
    known = json.loads(index.get_state(FILES_KEY) or "{}")
    known.update(dict(files))
    index.set_state(FILES_KEY, json.dumps(known))
    if index.get_state(SHA_KEY) == parent_sha:
        index.set_state(SHA_KEY, sha)
