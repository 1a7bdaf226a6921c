"""The Generate tab's form: prompt, backend, size, seed and the backend's own parameters.

The advanced parameters are drawn from the backend's declaration; their values live in the
`params` state, which is what a submission sends. `version` redraws them: it changes when a
visitor picks a backend and when "Use these settings" fills the form, never on a bare backend
change, so a filled form keeps its parameters.
"""

from __future__ import annotations

import base64
import html
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

import backends
from backends.base import IMAGE_TO_VIDEO, Backend, Checkpoint, Param
from dailies.app import zerogpu
from dailies.app.errors import ApiError
from dailies.app.groups import snapped_body
from dailies.app.jobs import Accepted
from dailies.app.page import backend_menu, compare, job_list, sizes
from dailies.app.page.run_here import run_here
from dailies.app.service import Service
from dailies.app.validation import SEED_MAX
from dailies.app.visitors import Visitor, of_page
from dailies.contract.spec import duration_s


@dataclass(frozen=True)
class Form:
    prompt: gr.Textbox
    negative: gr.Textbox
    backend: gr.Dropdown
    note: gr.Markdown
    duration: gr.Slider
    fps: gr.Slider
    width: gr.Slider
    height: gr.Slider
    aspect: gr.Radio
    random_seed: gr.Checkbox
    seed: gr.Number
    params: gr.State
    version: gr.Number
    settings: gr.Accordion
    image: gr.Image
    submit: gr.Button
    error: gr.Markdown
    gpu_estimate: gr.Markdown  # on ZeroGPU only: the GPU time a job will ask for

    @property
    def as_body(self) -> list[gr.components.Component]:
        """What `request_body` takes, in its order."""
        return [
            self.prompt,
            self.negative,
            self.backend,
            self.duration,
            self.width,
            self.height,
            self.random_seed,
            self.seed,
            self.params,
        ]

    @property
    def filled(self) -> set[gr.components.Component]:
        """What `fill` may set: the form's fields, then what shows them."""
        return {*self.as_body, self.note, self.fps, self.version, self.settings, self.image}

    @property
    def fitting(self) -> set[gr.components.Component]:
        """What `fitted` may set."""
        return {
            self.note, self.negative, self.fps, self.duration, self.width, self.height, self.random_seed, self.image,
        }  # fmt: skip


EXAMPLES = [
    "A paper boat drifting down a rainy street at dusk",
    "A lighthouse in a storm, waves crashing, cinematic",
    "A red fox trotting through fresh snow, slow motion",
    "Neon city at night seen from a train window",
]


def default_backend(service: Service) -> str:
    """The first backend that can run now, else the first one."""
    names = list(backends.BACKEND_CLASSES)
    return next((n for n in names if service.availability(backends.get(n, service.settings)).usable), names[0])


def backend_choices(service: Service) -> list[tuple[str, str]]:
    """Only backends that can run now; the others are listed apart with a reason (backend_menu)."""
    return backend_menu.choices(service.describe_backends())


def backend_note(service: Service, name: str, width: float | None = None, height: float | None = None) -> str:
    info = next(b for b in service.describe_backends() if b["name"] == name)
    return backend_menu.note(info, width, height)


def defaults(backend: Backend) -> dict[str, Any]:
    return {p.name: p.default for p in backend.params}


def checkpoint(backend: Backend, params: dict[str, Any] | None) -> Checkpoint:
    """The rules of the checkpoint the form's `model` parameter names (the default one when it
    names none, or one the backend does not know: validation says so on submit)."""
    try:
        return backend.rules((params or {}).get("model"))
    except ValueError:
        return backend.default


def fitted(
    service: Service, form: Form, name: str, params: dict[str, Any] | None, seconds: float, width: float, height: float
) -> dict[gr.components.Component, Any]:
    """Updates that fit the form to a backend and its chosen checkpoint (`Form.fitting`): the
    note, negative prompt, fps (a choice where the checkpoint has a range), duration range at
    that fps, size range with the size snapped to it, seed, and the start image where the
    checkpoint does image-to-video. `params` may hold `fps`, the visitor's choice."""
    backend = backends.get(name, service.settings)
    rules = checkpoint(backend, params)
    low, high = rules.fps_bounds
    fps = min(max(int((params or {}).get("fps") or rules.fps), low), high)
    shortest, longest, _ = sizes.duration_range(rules, fps)
    rule = rules.size
    size = {"minimum": rule.minimum, "maximum": rule.maximum, "step": rule.multiple}
    w, h = rule.nearest(int(width)), rule.nearest(int(height))
    length = min(max(seconds, shortest), longest)
    # A slider wants minimum < maximum: a checkpoint with one fps gets no choice at all.
    choice = gr.update(visible=True, minimum=low, maximum=high, value=fps) if low < high else gr.update(visible=False)
    return {
        form.note: gr.update(value=backend_note(service, name, w, h)),
        form.negative: gr.update(visible=backend.negative_prompt),
        form.fps: choice,
        form.duration: gr.update(minimum=shortest, maximum=longest, info=f"at {fps} fps", **moved(seconds, length)),
        form.width: gr.update(**size, **moved(width, w)),
        form.height: gr.update(**size, **moved(height, h)),
        form.random_seed: gr.update(interactive=backend.seeded),
        form.image: gr.update(visible=IMAGE_TO_VIDEO in rules.modes, value=None),
    }


def moved(current: float, fitted: float) -> dict[str, float]:
    """The value to set only where fitting moved it: setting a box the visitor may be typing
    into at that moment would undo what they typed."""
    return {} if fitted == current else {"value": fitted}


def pick_backend(
    service: Service, form: Form, name: str, seconds: float, width: float, height: float, version: int
) -> dict[gr.components.Component, Any]:
    """A visitor picked a backend: fit the form to it, its parameters back to their defaults."""
    params = defaults(backends.get(name, service.settings))
    fit = fitted(service, form, name, params, seconds, width, height)
    return {**fit, form.params: params, form.version: version + 1}


def pick_aspect(service: Service, name: str, params: dict[str, Any], aspect: str) -> tuple[int, int]:
    """Width and height for an aspect-ratio preset, snapped to the chosen model's rules."""
    return sizes.preset(checkpoint(backends.get(name, service.settings), params), aspect)


def fill(service: Service, form: Form, recipe: dict[str, Any], version: int) -> dict[gr.components.Component, Any]:
    """'Use these settings': the form as the generation was made, its parameters included (`Form.filled`)."""
    backend = backends.get(recipe["backend"], service.settings)
    params = dict(recipe["params"])
    low, high = checkpoint(backend, params).fps_bounds
    if low < high:
        params["fps"] = recipe["fps"]  # a choice this checkpoint offers: the one it was made at
    fit = fitted(service, form, recipe["backend"], params, recipe["duration_s"], recipe["width"], recipe["height"])
    return {
        **fit,
        form.prompt: recipe["prompt"],
        form.negative: {**fit[form.negative], "value": recipe["negative_prompt"]},
        form.backend: recipe["backend"],
        form.duration: {**fit[form.duration], "value": recipe["duration_s"]},
        form.width: {**fit[form.width], "value": recipe["width"]},
        form.height: {**fit[form.height], "value": recipe["height"]},
        form.random_seed: {**fit[form.random_seed], "value": recipe["seed"] is None},
        form.seed: recipe["seed"],
        form.params: params,
        form.version: version + 1,
        form.settings: gr.Accordion(open=True),  # the visitor sees the settings they took
    }


def job_recipe(request: dict[str, Any]) -> dict[str, Any]:
    """A job's request (`JobStatus.request`) as a recipe `fill` takes: a job card's "Use these
    settings" (its seed is the one drawn, so the same video comes back)."""
    return {**request, "duration_s": duration_s(request["num_frames"], request["fps"])}


def other_backend(service: Service, name: str) -> str | None:
    """A backend other than `name` that can run now (an open model before the preview)."""
    usable = [b for b in service.describe_backends() if b["available"] and b["name"] != name]
    return min(usable, key=lambda b: b["kind"] == "preview")["name"] if usable else None


def elsewhere(service: Service, recipe: dict[str, Any]) -> dict[str, Any]:
    """'Try on another backend': the recipe's prompt, seed, size and length moved to
    `other_backend`, snapped to its rules, with its own parameters. The recipe itself when no
    other backend can run."""
    name = other_backend(service, recipe["backend"])
    if name is None:
        return recipe
    other = backends.get(name, service.settings)
    shared = ("prompt", "negative_prompt", "seed", "width", "height", "fps", "duration_s")
    body = snapped_body({k: recipe[k] for k in shared if recipe.get(k) is not None}, other)
    return {
        **body,
        "negative_prompt": body.get("negative_prompt", ""),
        "seed": body.get("seed"),
        "duration_s": duration_s(body["num_frames"], body["fps"]),
        "params": defaults(other),
    }


def request_body(
    text: str,
    negative: str,
    name: str,
    seconds: float,
    width: float,
    height: float,
    random_seed: bool,
    seed: float | None,
    params: dict[str, Any] | None,
    image: str | None = None,
) -> dict[str, Any]:
    """The form as a POST /api/v1/jobs body (`image`: the uploaded start image's path)."""
    body: dict[str, Any] = {
        "prompt": text,
        "backend": name,
        "duration_s": seconds,
        "width": int(width),
        "height": int(height),
        **(params or {}),
    }
    if negative:
        body["negative_prompt"] = negative
    if not random_seed and seed is not None:
        body["seed"] = int(seed)
    if image:
        body["image"] = base64.b64encode(Path(image).read_bytes()).decode()
    return body


def submit(service: Service, visitor: Visitor, body: dict[str, Any]) -> tuple[Accepted | None, str]:
    """Submit the job: what was accepted (None: refused) and the error line to show."""
    try:
        return service.jobs.submit(body, visitor, from_page=True), ""
    except ApiError as exc:
        field = f" ({exc.field})" if exc.field else ""
        return None, f"**Not queued{field}:** {html.escape(exc.message)}"


def param_input(p: Param, value: Any, key: str) -> gr.components.Component:
    kwargs = {"label": p.describe()["label"], "info": p.help, "key": key, "elem_id": f"param-{p.name}"}
    if p.choices:
        return gr.Dropdown(list(p.choices), value=value, interactive=True, **kwargs)
    if p.type is bool:
        return gr.Checkbox(value, interactive=True, **kwargs)
    # A None default means "the model's own": an empty Number, not a slider.
    if p.minimum is not None and p.maximum is not None and p.default is not None:
        step = 1 if p.type is int else 0.1
        return gr.Slider(p.minimum, p.maximum, value=value, step=step, interactive=True, **kwargs)
    # A text box, not a Number: Gradio's page turns an empty Number into 0 (and sends it), where
    # empty means the model's own value.
    return gr.Textbox("" if value is None else str(value), placeholder="the model's own", interactive=True, **kwargs)


def typed(p: Param, value: Any) -> Any:
    """An input's value as the parameter takes it: an empty text box is None (the model's own);
    text that is not a number goes as typed, for the server to refuse with a clear error."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text or p.type is str:
        return text or None
    try:
        return int(text) if p.type is int else float(text)
    except ValueError:
        return text


def layout(service: Service, demo: gr.Blocks) -> tuple[Form, job_list.JobList, compare.CompareView, gr.CheckboxGroup]:
    """Phone first: prompt, backend and Generate at the top, the settings folded under them; the
    visitor's comparison and jobs beside the form (under it on a phone, where a submission
    scrolls them into view)."""
    settings = service.settings
    chosen = default_backend(service)
    first = backends.get(chosen, settings)
    with gr.Row(elem_id="generate-row"):
        with gr.Column(scale=3, min_width=300):
            prompt = gr.Textbox(
                label="Prompt",
                lines=2,
                max_length=2000,
                elem_id="prompt",
                placeholder="A paper boat drifting down a rainy street at dusk",
            )
            backend = gr.Dropdown(backend_choices(service), value=chosen, label="Backend", elem_id="backend")
            with gr.Row(elem_id="submit-row"):
                submit_button = gr.Button("Generate", variant="primary", elem_id="submit", min_width=120)
            error = gr.Markdown("", elem_id="submit-error")
            gpu_estimate = gr.Markdown("", elem_id="gpu-estimate", visible=zerogpu.enabled())
            note = gr.Markdown(backend_note(service, chosen), elem_id="backend-note")
            with gr.Accordion("Compare side by side", open=False, elem_id="compare-accordion"):
                compare_on = gr.CheckboxGroup(
                    compare.choices(service),
                    value=[],
                    label="Compare on",
                    info="Pick two or more: the same prompt and seed go to each, sized to each one's rules.",
                    elem_id="compare-on",
                )
            with gr.Accordion("Settings", open=False, elem_id="settings") as settings_box:
                negative = gr.Textbox(label="Negative prompt", elem_id="negative-prompt", visible=first.negative_prompt)
                size = {"minimum": first.size.minimum, "maximum": first.size.maximum, "step": first.size.multiple}
                shortest, longest, usual = sizes.duration_range(first.default)
                aspect = gr.Radio(list(sizes.ASPECTS), value=None, label="Aspect ratio", elem_id="aspect")
                low, high = first.default.fps_bounds
                with gr.Row():
                    duration = gr.Slider(
                        shortest,
                        longest,
                        value=usual,
                        step=0.01,
                        label="Duration (s)",
                        info=f"at {first.default.fps} fps",
                        elem_id="duration",
                    )
                    fps = gr.Slider(
                        # Hidden where the checkpoint has one fps (a slider still wants a range).
                        low, max(high, low + 1), value=first.default.fps, step=1, label="Frames per second",
                        elem_id="fps", visible=low < high,
                    )  # fmt: skip
                # Length and size on rows of two: four across left the labels wrapped and clipped.
                with gr.Row():
                    width = gr.Slider(value=first.size.default[0], label="Width", elem_id="width", **size)
                    height = gr.Slider(value=first.size.default[1], label="Height", elem_id="height", **size)
                with gr.Row():
                    random_seed = gr.Checkbox(True, label="Random seed", elem_id="random-seed")
                    # Shown only when the visitor picks a seed: an empty box would read as seed 0.
                    seed = gr.Number(None, label="Seed", precision=0, minimum=0, elem_id="seed", visible=False)
                image = gr.Image(
                    label="Start image (image-to-video, optional)",
                    type="filepath",
                    sources=["upload", "clipboard"],
                    visible=IMAGE_TO_VIDEO in first.modes,
                    elem_id="start-image",
                )
                params = gr.State(defaults(first))
                version = gr.Number(0, precision=0, visible=False)

                @gr.render(inputs=[backend, params, version], triggers=[demo.load, version.change])
                def advanced(name: str, values: dict[str, Any], drawn: int) -> None:
                    for p in backends.get(name, settings).params:
                        # The key changes with each drawing, so a redrawn input shows the state's value.
                        comp = param_input(p, values.get(p.name, p.default), key=f"{name}-{p.name}-{drawn}")
                        comp.change(
                            lambda v, s, p=p: {**s, p.name: typed(p, v)},
                            [comp, params],
                            params,
                            api_visibility="private",
                            queue=False,
                        )
                        if p.name == "model":  # another checkpoint: other sizes, lengths, fps, modes
                            comp.input(
                                lambda model, s, seconds, w, h, name=name: fitted(
                                    service, form, name, {**s, "model": model}, seconds, w, h
                                ),
                                [comp, params, duration, width, height],
                                form.fitting,  # drawn once the page is built, so `form` exists by then
                                api_visibility="private",
                                queue=False,
                            )

            gr.Examples(EXAMPLES, inputs=prompt, label="Try one", elem_id="examples")
            gr.HTML(backend_menu.unavailable_html(service.describe_backends()), elem_id="backend-unavailable")
        with gr.Column(scale=2, min_width=300, elem_id="results"):
            view = compare.layout()
            jobs = job_list.layout()
    form = Form(
        prompt, negative, backend, note, duration, fps, width, height, aspect, random_seed, seed, params, version,
        settings_box, image, submit_button, error, gpu_estimate,
    )  # fmt: skip
    return form, jobs, view, compare_on


def wire(
    service: Service, form: Form, jobs: job_list.JobList, view: compare.CompareView, compare_on: gr.CheckboxGroup
) -> None:
    settings = service.settings
    # `input`, not `change`: "Use these settings" sets the backend too, and must keep its parameters.
    form.backend.input(
        lambda name, seconds, w, h, v: pick_backend(service, form, name, seconds, w, h, v),
        [form.backend, form.duration, form.width, form.height, form.version],
        {*form.fitting, form.params, form.version},
        api_visibility="private",
        queue=False,
    )
    form.fps.input(
        lambda rate, name, params, seconds, w, h: {
            form.params: {**params, "fps": int(rate)},
            **fitted(service, form, name, {**params, "fps": int(rate)}, seconds, w, h),
        },
        [form.fps, form.backend, form.params, form.duration, form.width, form.height],
        {form.params, *form.fitting},
        api_visibility="private",
        queue=False,
    )
    form.random_seed.change(
        lambda random: gr.update(visible=not random),
        form.random_seed,
        form.seed,
        api_visibility="private",
        queue=False,
    )
    # A visitor who unticks it gets a seed to keep or change (an empty box would show 0).
    form.random_seed.input(
        lambda random: gr.skip() if random else secrets.randbelow(SEED_MAX + 1),
        form.random_seed,
        form.seed,
        api_visibility="private",
        queue=False,
    )
    form.aspect.input(
        lambda name, params, aspect: pick_aspect(service, name, params, aspect),
        [form.backend, form.params, form.aspect],
        [form.width, form.height],
        api_visibility="private",
        queue=False,
    )
    for size in (form.width, form.height):
        size.release(
            lambda name, w, h: backend_note(service, name, w, h),
            [form.backend, form.width, form.height],
            form.note,
            api_visibility="private",
            queue=False,
        )

    def do_submit(
        text: str,
        negative: str,
        name: str,
        seconds: float,
        w: float,
        h: float,
        random_seed: bool,
        seed: float | None,
        params: dict,
        tracked: list,
        names: list[str] | None,
        image: str | None,
        request: gr.Request,
        profile: gr.OAuthProfile | None,
        progress=gr.Progress(),  # noqa: B008 (Gradio's idiom)
    ) -> Iterator[dict[gr.components.Component, Any]]:
        body = request_body(text, negative, name, seconds, w, h, random_seed, seed, params, image)
        visitor = of_page(request.request, profile and profile.username, settings)
        if names and len(names) > 1:
            error, group_id = compare.submit(service, visitor, compare.group_body(body, names))
            yield {form.error: error, jobs.my_jobs: tracked, view.group_id: group_id or gr.skip()}
            return
        accepted, error = submit(service, visitor, body)
        if accepted is None:
            yield {form.error: error, jobs.my_jobs: tracked}  # programs read the list back unchanged
            return
        tracked = job_list.track(tracked, accepted.spec.id)
        yield {form.error: "", jobs.my_jobs: tracked, jobs.listing: job_list.listing_html(tracked)}
        for line in run_here(service, accepted, progress):
            yield {form.error: line or gr.skip()}

    # A generator on every hardware: on ZeroGPU it goes on to run an open model in this request.
    # Not one at a time: the per-visitor limits (and the ZeroGPU scheduler) bound it.
    form.submit.click(
        do_submit,
        # /submit's inputs and outputs for programs (gradio_client), in their order: the form,
        # tracked ids, compare on, image; the error line, tracked ids, the list, the comparison.
        [*form.as_body, jobs.my_jobs, compare_on, form.image],
        [form.error, jobs.my_jobs, jobs.listing, view.group_id],
        api_name="submit",
        concurrency_limit=None,
    ).then(
        # Draw the comparison at once (not at the next tick); a single job hides it.
        lambda group_id, names: compare.draw(service, view, group_id if names and len(names) > 1 else None, ""),
        [view.group_id, compare_on],
        view.outputs,
        api_visibility="private",
        queue=False,
        show_progress="hidden",
    ).then(
        # Bring the new card (or comparison) into view: on a phone it sits under the form.
        None,
        js="() => dailies.scrollTo('#compare-view .dailies-compare, #jobs .dailies-job')",
    )
