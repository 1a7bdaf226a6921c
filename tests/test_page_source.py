"""The page's source keeps to its joints: Gradio's public API only, and every script a file in
static/ (none in Python strings). Fast: reads files, starts nothing."""

from __future__ import annotations

import os
import re
from pathlib import Path

from tests.harness import ROOT


def _python_files(under: Path) -> list[Path]:
    """The .py files under `under`, past hidden folders (a virtualenv, .git) and caches."""
    found = []
    for folder, subfolders, files in os.walk(under):
        subfolders[:] = [d for d in subfolders if not d.startswith(".") and d not in ("__pycache__", "node_modules")]
        found += [Path(folder, f) for f in files if f.endswith(".py")]
    assert found, under
    return found


def _holding(pattern: str, files: list[Path]) -> list[str]:
    return sorted(str(p.relative_to(ROOT)) for p in files if re.search(pattern, p.read_text(encoding="utf-8")))


def test_no_private_event_data() -> None:
    assert _holding(r"\._data\b", _python_files(ROOT / "dailies")) == []


def test_no_script_in_python() -> None:
    # \x3c is "<": this file, like every other, holds no script tag.
    assert _holding(r"(?i)\x3cscript", _python_files(ROOT)) == []


def test_the_page_does_not_reach_into_gradio_context() -> None:
    assert _holding(r"gradio\.context|\bLocalContext\b", _python_files(ROOT / "dailies" / "app" / "page")) == []
