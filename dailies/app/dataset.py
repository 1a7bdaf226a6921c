"""The local dataset folder, in the layout the Hub's viewer shows as a video dataset.

```
README.md                                  YAML pins data_files to the videos and metadata
data/<date>/<batch>/<id>.mp4               videos
data/<date>/<batch>/metadata.jsonl         one row per video, `file_name` first, same columns always
posters/<date>/<id>.jpg                    posters, outside the video folders
```

A batch folder is what one Hub commit adds; the publisher closes the open batch when it
commits, so the local folder and the Hub repo have the same layout.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Container, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypedDict, get_type_hints

from dailies.contract.job_record import ResultMeta
from dailies.contract.spec import duration_s, new_id


@dataclass(frozen=True)
class Generation:
    """A finished job as the collector stores it: what it asked for and what came back."""

    id: str
    prompt: str
    negative_prompt: str
    backend: str
    seed: int | None
    params: dict[str, Any]
    group: str  # the comparison it was made in, "" for none
    created: float
    model: str
    width: int
    height: int
    num_frames: int
    fps: int
    has_audio: bool
    timings: dict[str, float]

    @classmethod
    def of(cls, request: dict[str, Any], created: float, meta: ResultMeta, stored: float) -> Generation:
        """From the job's recipe (JobSpec.recipe) and the run's ResultMeta, stored at `stored`."""
        return cls(
            id=request["id"],
            prompt=request["prompt"],
            negative_prompt=request.get("negative_prompt") or "",
            backend=request["backend"],
            seed=request.get("seed"),
            params=request.get("params") or {},
            group=request.get("group") or "",  # jobs from before comparisons have none
            created=created,
            model=meta.model,
            width=meta.width,
            height=meta.height,
            num_frames=meta.num_frames,
            fps=meta.fps,
            has_audio=meta.has_audio,
            timings={
                "queued_s": round(meta.started - created, 3),
                "run_s": round(meta.finished - meta.started, 3),
                "total_s": round(stored - created, 3),
                **meta.extra.get("timings", {}),  # a backend's own, e.g. load_s
            },
        )


class DatasetRow(TypedDict):
    """One line of a metadata.jsonl. Every row has exactly these columns, with these types
    (params and timings are JSON strings so that rows from different backends never disagree)."""

    file_name: str
    id: str
    created_at: str
    prompt: str
    negative_prompt: str
    backend: str
    model: str
    seed: int
    width: int
    height: int
    num_frames: int
    fps: int
    duration_s: float
    has_audio: bool
    params: str
    timings: str
    poster: str
    group: str  # the comparison it was made in, "" for none


class GenerationRow(DatasetRow):
    """A dataset row with its video's path in the folder: what the index holds and serves."""

    video_path: str


COLUMNS: dict[str, type] = get_type_hints(DatasetRow)
BATCH_MAX_ROWS = 500
NO_SEED = -1  # the seed column is an int for the Hub's viewer: a backend without seeds stores -1

README = """---
configs:
- config_name: default
  data_files:
  - split: train
    path:
    - "data/**/*.mp4"
    - "data/**/metadata.jsonl"
tags:
- video
- text-to-video
- dailies
---

# Dailies generations

Videos made with [Dailies](https://github.com/) from text prompts, one row per video in
`metadata.jsonl` files next to the videos, with the full recipe (prompt, backend, model, seed,
parameters, timings). Posters are under `posters/`.
"""


def utc_date(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")


def make_row(generation: Generation, video_name: str, poster_path: str) -> DatasetRow:
    """A metadata row with every column, typed."""
    row: DatasetRow = {
        "file_name": video_name,
        "id": generation.id,
        "created_at": datetime.fromtimestamp(generation.created, UTC).isoformat(),
        "prompt": generation.prompt,
        "negative_prompt": generation.negative_prompt,
        "backend": generation.backend,
        "model": generation.model,
        "seed": NO_SEED if generation.seed is None else int(generation.seed),
        "width": int(generation.width),
        "height": int(generation.height),
        "num_frames": int(generation.num_frames),
        "fps": int(generation.fps),
        "duration_s": duration_s(generation.num_frames, generation.fps),
        "has_audio": bool(generation.has_audio),
        "params": json.dumps(generation.params, sort_keys=True),
        "timings": json.dumps(generation.timings, sort_keys=True),
        "poster": poster_path,
        "group": generation.group,
    }
    assert list(row) == list(COLUMNS)
    return row


def row_seed(row: DatasetRow) -> int | None:
    """The seed a stored row was made with, None when its backend takes none."""
    return None if row["seed"] < 0 else row["seed"]


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class LocalDataset:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._batch: tuple[str, str] | None = None  # (date, batch id)
        self._batch_rows = 0
        root.mkdir(parents=True, exist_ok=True)
        if not (root / "README.md").exists():
            _write_atomic(root / "README.md", README.encode())

    def _batch_dir(self, date: str) -> Path:
        if self._batch is None or self._batch[0] != date or self._batch_rows >= BATCH_MAX_ROWS:
            self._batch, self._batch_rows = (date, new_id()), 0
        return self.root / "data" / date / self._batch[1]

    def close_batch(self) -> None:
        """Start a new batch folder for the next rows (the publisher calls this when it commits)."""
        with self._lock:
            self._batch = None

    def write(self, generation: Generation, video: bytes, poster: bytes) -> GenerationRow:
        """Store video and poster, then append the row: the row is written last, so a row always
        points at files that exist. Returns the row plus `video_path` (relative to the root).

        One row per job: a generation whose id is stored already (a result delivered twice, a
        collect finished again after a crash) writes nothing and returns the stored row."""
        date = utc_date(generation.created)
        with self._lock:
            stored = self.find(generation.id, generation.created)
            if stored is not None:
                return stored
            folder = self._batch_dir(date)
            poster_path = f"posters/{date}/{generation.id}.jpg"
            files = (self.root / poster_path, folder / f"{generation.id}.mp4")
            try:
                _write_atomic(files[0], poster)
                _write_atomic(files[1], video)
                row = make_row(generation, f"{generation.id}.mp4", poster_path)
                line = (json.dumps(row, ensure_ascii=False) + "\n").encode()
            except Exception:
                # No row points at them: leave no orphan files behind.
                for path in files:
                    path.unlink(missing_ok=True)
                raise
            # One O_APPEND write per row: readers never see half a row from a live writer.
            fd = os.open(folder / "metadata.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
            self._batch_rows += 1
        return {**row, "video_path": (folder / row["file_name"]).relative_to(self.root).as_posix()}

    def remove(self, row: GenerationRow) -> None:
        """Take a row out of its metadata.jsonl, then delete its video and poster (the row goes
        first, so no row points at missing files). Doing it again changes nothing, so a removal a
        stop interrupted is finished on the next start."""
        metadata = self.root / row["video_path"].rsplit("/", 1)[0] / "metadata.jsonl"
        with self._lock:
            if metadata.exists():
                text = metadata.read_text(encoding="utf-8")
                kept = drop_rows(text, {row["id"]})
                if not kept:  # no row left: no metadata.jsonl (an empty one would be a table of nothing)
                    metadata.unlink()
                elif kept != text:
                    _write_atomic(metadata, kept.encode())
            for path in (self.root / row["video_path"], self.root / row["poster"]):
                path.unlink(missing_ok=True)

    def find(self, generation_id: str, created: float) -> GenerationRow | None:
        """The stored row of this id, looked for among its creation day's rows."""
        folder = self.root / "data" / utc_date(created)
        rows = (
            row
            for path in sorted(folder.glob("*/metadata.jsonl"))
            for row in parse_metadata(path.parent.relative_to(self.root).as_posix(), path.read_text(encoding="utf-8"))
        )
        return next((row for row in rows if row["id"] == generation_id), None)

    def metadata_lines(self, folder: str) -> list[tuple[str, str]]:
        """(id, line) for each complete row of one batch folder's metadata.jsonl."""
        path = self.root / folder / "metadata.jsonl"
        if not path.exists():
            return []
        return [(row["id"], line) for line, row in _parse_lines(path.read_text(encoding="utf-8"))]

    def rows(self) -> Iterator[GenerationRow]:
        """Every row with its `video_path`, skipping a torn last line left by a crash."""
        for path in sorted((self.root / "data").glob("*/*/metadata.jsonl")):
            yield from parse_metadata(path.parent.relative_to(self.root).as_posix(), path.read_text(encoding="utf-8"))


def parse_metadata(folder: str, text: str) -> list[GenerationRow]:
    """The rows of one batch folder's metadata.jsonl, each with its `video_path`."""
    return [{**row, "video_path": f"{folder}/{row['file_name']}"} for _, row in _parse_lines(text)]


def drop_rows(text: str, ids: Container[str]) -> str:
    """A metadata.jsonl's text without the rows of `ids`; every other line is kept as it was."""
    dropped = {line for line, row in _parse_lines(text) if row["id"] in ids}
    if not dropped:
        return text
    return "".join(line + "\n" for line in text.splitlines() if line not in dropped)


def _parse_lines(text: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        # A row another tool wrote without our columns is skipped, never a reason to fail start-up.
        if isinstance(row, dict) and isinstance(row.get("id"), str) and isinstance(row.get("file_name"), str):
            yield line, row
