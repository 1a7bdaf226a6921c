"""What a card's click carries to Python: the scripts call `trigger("click", {...})` (Gradio's
custom HTML events) and Gradio hands the data to an `EventData` subclass named in a handler's
type hints, as it does for its own (`gr.SelectData`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gradio as gr

if TYPE_CHECKING:
    from gradio.blocks import Block


class CardClick(gr.EventData):
    """A click on a job card's button (static/jobs.js: `action` and the job's `id`) or on a
    gallery card (static/gallery.js: its generation's `id`); empty where the click sent none."""

    def __init__(self, target: Block | None, data: Any) -> None:
        super().__init__(target, data)
        sent = data if isinstance(data, dict) else {}
        self.id = str(sent.get("id", ""))
        self.action = str(sent.get("action", ""))
