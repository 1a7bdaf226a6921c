"""The app's own static files (static/, served at STATIC_URL) and its HTML templates
(dailies/app/templates/). Every script is a file in static/: the Gradio page loads its list
(templates/page_scripts.html) through `page_head`, the share pages name theirs in their templates;
`document_head` (templates/document_scripts.html) those that must run before Gradio draws the page.

Templates escape every value they are given with `html.escape` (prompts are text wherever they
are shown); a template shows another's HTML by including it, never as a value.
"""

from __future__ import annotations

import html
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

STATIC = Path(__file__).resolve().parents[2] / "static"
STATIC_URL = "/dailies-static"  # off Gradio's own /static and /assets


def _escaped(value: object) -> Markup:
    # html.escape rather than Jinja's own escaping: the same entities the pages always had (&quot;).
    return value if isinstance(value, Markup) else Markup(html.escape(str(value)))


_templates = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parent / "templates"),
    autoescape=True,
    finalize=_escaped,
    undefined=StrictUndefined,
)


def render(name: str, **values: object) -> str:
    """The template `name` filled with `values`."""
    return _templates.get_template(name).render(static=STATIC_URL, **values)


def page_head() -> str:
    """The `head` of every gr.HTML that runs a script: Gradio loads each src once and runs the
    component's `js_on_load` only once they have loaded, so `js_on_load` may call them."""
    return render("page_scripts.html")


def document_head() -> str:
    """The Gradio page's own `<head>` part: scripts that must be running before Gradio draws
    anything (a gr.HTML's `head` loads only once that component is drawn, which may be after the
    visitor's first taps). static/typed.js keeps what a visitor types in a fold just opened."""
    return render("document_scripts.html")
