"""The GPU script's code at tiny sizes on the CPU: every speed feature switched on and timed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import common, gpu

pytestmark = pytest.mark.models


def test_tiny_run_measures_plain_bf16_and_each_feature(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common, "RESULTS", tmp_path)
    summary = gpu.main(["--tiny", "--steps", "2", "--record", "gpu_test"])

    assert json.loads((tmp_path / "gpu_test.json").read_text())["results"] == summary["results"]
    assert summary["card"] == "cpu" and summary["measured"] is False
    (wan,) = summary["results"]
    plain = wan["bf16"]
    assert plain["step_s"] > 0 and plain["decode_s"] > 0
    assert plain["video_s"] == pytest.approx(wan["published_steps"] * plain["step_s"] + plain["decode_s"], abs=0.01)
    expected = {
        "compile": "compile_repeated_blocks",
        "attention": "_native_math",
        "step_cache": "FirstBlockCache",
        "fp8": "fp8",
    }
    for feature, switched in expected.items():
        result = wan[feature]
        assert "error" not in result, (feature, result)
        assert switched in result["switched_on"][0]
        assert result["step_ratio"] == pytest.approx(result["step_s"] / plain["step_s"], abs=0.002)
    # All four at once do not combine on this install: regional compilation (fullgraph) cannot trace
    # fp8 layerwise casting, which builds a torch.nn.Parameter inside the compiled blocks (compile and
    # fp8 alone reproduce it). The run records that reason, not another failure, and goes on.
    assert set(wan["all"]) == {"error"}, wan["all"]
    assert wan["all"]["error"].startswith(
        "Unsupported: Attempted to use `torch.nn.Parameter()` constructor with Dynamo"
    ), wan["all"]["error"]
