"""Speed features per checkpoint: the worker settings, and the runtime switching them on."""

from __future__ import annotations

from pathlib import Path

import pytest

import backends
from dailies.contract.settings import SAME_PICTURE, Settings
from dailies.contract.spec import JobSpec, new_id
from dailies.worker import models
from tests.tiny_pipelines import save_tiny, smallest_frames


@pytest.mark.unit
def test_a_checkpoint_setting_beats_its_backend_which_beats_the_default() -> None:
    settings = Settings.from_env(
        {
            "DAILIES_SPEED": "step_cache",
            "DAILIES_SPEED_WAN": "none",
            "DAILIES_SPEED_WAN_2_1_14B": "compile, attention",
        }
    )
    assert settings.speed_for("wan", "2.1-14b", "cuda") == ("compile", "attention")
    assert settings.speed_for("wan", "2.1-1.3b", "cuda") == ()
    assert settings.speed_for("ltx-video", "0.9.1", "cuda") == ("step_cache",)
    # Unset: on a GPU what leaves the picture as it is; on the CPU nothing.
    assert Settings.from_env({}).speed_for("wan", "2.1-14b", "cuda") == SAME_PICTURE == ("compile", "attention")
    assert Settings.from_env({}).speed_for("wan", "2.1-14b", "cpu") == ()
    with pytest.raises(SystemExit, match="DAILIES_SPEED_MOCHI: unknown speed feature 'turbo'"):
        Settings.from_env({"DAILIES_SPEED_MOCHI": "compile,turbo"})
    with pytest.raises(SystemExit, match="compile and fp8 do not work together"):
        Settings.from_env({"DAILIES_SPEED": "compile,fp8"})


@pytest.mark.models
def test_the_runtime_switches_on_what_the_settings_ask_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(models, "RESIDENT", models.ResidentPipelines())
    env = {"DAILIES_DEVICE": "cpu", "DAILIES_MODEL_WAN": str(save_tiny("wan", tmp_path))}
    spec = JobSpec(new_id(), "wan", "a red boat", "", 3, 64, 64, smallest_frames("wan"), 16, params={"steps": 2})

    def run(**speed: str):
        settings = Settings.from_env({**env, **speed})
        return backends.get("wan", settings).generate(spec, lambda fraction, message: None, lambda: False)

    cached = run(DAILIES_SPEED_WAN="attention,step_cache")
    assert cached.extra["speed"] == ["attention", "step_cache"]
    (loaded,) = models.RESIDENT._items.values()
    assert loaded.pipe.transformer.is_cache_enabled
    assert cached.num_frames == smallest_frames("wan") and cached.mp4[4:8] == b"ftyp"
