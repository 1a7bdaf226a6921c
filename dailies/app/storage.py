"""Where generations are kept: the local dataset folder, and the Hub dataset when one is set.

With `HF_DATASET_REPO` the index follows the Hub dataset (rebuilt from it on start); with
`HF_TOKEN` too, the publisher commits new rows to it. Without either the local folder is the
record, in the same layout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError

from dailies.app.collector import result_payload
from dailies.app.dataset import GenerationRow, LocalDataset
from dailies.app.hub import HubRepo, IndexSync
from dailies.app.index import Index
from dailies.app.publisher import Publisher, PublishQueue
from dailies.contract.settings import Settings


class Storage:
    def __init__(self, settings: Settings, dataset: LocalDataset, index: Index) -> None:
        self.settings, self.dataset, self.index = settings, dataset, index
        self.hub: HubRepo | None = None
        self.queue: PublishQueue | None = None
        self.publisher: Publisher | None = None
        self.sync: IndexSync | None = None
        if settings.hf_dataset_repo:
            self.hub = HubRepo(settings.hf_dataset_repo, settings.hf_token, settings.data_dir / "hub-cache")
            self.queue = PublishQueue(settings.data_dir / "publish.sqlite")
            self.sync = IndexSync(self.hub, self.index, lambda rows: self.queue.mark_published(rows, None))
            if settings.hf_token:
                self.publisher = Publisher(self.hub, dataset, self.queue, index, settings.commit_every)

    @property
    def on_row(self):
        """The collector's hook for a newly stored row (None when nothing is published)."""
        return self.publisher.enqueue if self.publisher else None

    def start(self) -> None:
        if self.sync:
            self.sync.start()
        if self.publisher:
            self.publisher.start()

    def stop(self) -> None:
        if self.publisher:
            self.publisher.stop()

    def media_urls(self, rows: list[GenerationRow]) -> dict[str, dict[str, str]]:
        """Where the browser gets each row's video and poster: the Hub's own URLs for a public
        dataset once the row is there; otherwise /media on this app, which serves the local copy
        (or, for a private dataset, fetches the file from the Hub)."""
        on_hub: set[str] = set()
        if self.hub and self.queue and self.hub.private is False:
            on_hub = self.queue.published(r["id"] for r in rows)
        urls = {}
        for r in rows:
            if r["id"] in on_hub:
                urls[r["id"]] = {"video_url": self.hub.url(r["video_path"]), "poster_url": self.hub.url(r["poster"])}
            else:
                payload = result_payload(r)
                urls[r["id"]] = {"video_url": payload["video_url"], "poster_url": payload["poster_url"]}
        return urls

    def media_file(self, path: str) -> Path | None:
        """A dataset file for /media: the local copy, else one fetched from the Hub (then cached)."""
        local = self.dataset.root / path
        if local.is_file():
            return local
        if self.hub is None:
            return None
        try:
            return self.hub.download(path)
        except (EntryNotFoundError, RepositoryNotFoundError):
            return None

    def health(self) -> dict[str, Any]:
        if self.publisher:
            publisher = self.publisher.health()
        elif self.hub:
            publisher = {"enabled": False, "reason": "HF_TOKEN is not set: the Hub dataset is read, not written"}
        else:
            reason = "HF_TOKEN and HF_DATASET_REPO are not set: the local folder is the record"
            publisher = {"enabled": False, "reason": reason}
        return {"publisher": publisher, "index_sync": dict(self.sync.state) if self.sync else None}
