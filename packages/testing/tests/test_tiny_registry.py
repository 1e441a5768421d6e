"""The registry and the public API: names, errors, lazy imports, custom entries, call kwargs."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import ditkit_testing
from ditkit_testing import (
    TINY_PIPELINES,
    build_tiny_pipeline,
    build_tiny_transformer,
    tiny_call_kwargs,
    tiny_pipeline_names,
)


def test_names() -> None:
    assert tiny_pipeline_names() == (
        "flux",
        "qwen_image",
        "wan",
        "flux2",
        "hunyuan_video",
        "ltx",
        "cogvideox",
        "sd3",
        "zimage",
    )
    assert tuple(TINY_PIPELINES) == tiny_pipeline_names()
    assert TINY_PIPELINES["wan"].__name__ == "build_wan_pipeline"


def test_pipeline_classes() -> None:
    classes = {name: type(build_tiny_pipeline(name)).__name__ for name in tiny_pipeline_names()}
    assert classes == {
        "flux": "FluxPipeline",
        "qwen_image": "QwenImagePipeline",
        "wan": "WanPipeline",
        "flux2": "Flux2Pipeline",
        "hunyuan_video": "HunyuanVideoPipeline",
        "ltx": "LTXPipeline",
        "cogvideox": "CogVideoXPipeline",
        "sd3": "StableDiffusion3Pipeline",
        "zimage": "ZImagePipeline",
    }
    assert type(build_tiny_transformer("qwen_image")).__name__ == "QwenImageTransformer2DModel"


@pytest.mark.parametrize(
    "call",
    [build_tiny_pipeline, build_tiny_transformer, tiny_call_kwargs],
    ids=lambda f: f.__name__,
)
def test_unknown_name_lists_the_choices(call) -> None:
    with pytest.raises(
        KeyError, match=r"unknown tiny pipeline 'sdxl'.*'flux', 'qwen_image', 'wan'"
    ):
        call("sdxl")


def test_registered_builder_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def build_custom(seed: int = 0, dtype: torch.dtype | None = None):
        calls.append((seed, dtype))
        return TINY_PIPELINES["flux"](seed=seed, dtype=dtype)

    monkeypatch.setitem(TINY_PIPELINES, "custom", build_custom)
    pipe = build_tiny_pipeline("custom", seed=4)
    assert calls == [(4, None)]
    assert "custom" in tiny_pipeline_names()
    assert pipe._progress_bar_config == {"disable": True}


@pytest.mark.parametrize("name", tiny_pipeline_names())
def test_call_kwargs(name: str) -> None:
    a, b = tiny_call_kwargs(name, num_inference_steps=9, seed=5), tiny_call_kwargs(name, seed=5)
    assert a["num_inference_steps"] == 9 and b["num_inference_steps"] == 28
    assert a["output_type"] == "pt"
    assert a["generator"] is not b["generator"]  # fresh generator each time
    assert torch.equal(
        torch.randn(4, generator=a["generator"]), torch.randn(4, generator=b["generator"])
    )
    assert a["height"] % 16 == 0 and a["width"] % 16 == 0
    if name == "qwen_image":
        assert a["true_cfg_scale"] > 1 and a["negative_prompt"]
    if name in ("wan", "ltx", "cogvideox", "sd3", "zimage"):  # CFG with a negative prompt
        assert a["guidance_scale"] > 1 and a["negative_prompt"]
    if name in ("flux", "flux2", "hunyuan_video"):  # guidance-distilled: embedded, no negative
        assert a["guidance_scale"] > 1 and "negative_prompt" not in a
    if "num_frames" in a:  # video: 4k + 1 frames for a temporal factor of 4
        assert (a["num_frames"] - 1) % 4 == 0


def test_import_is_light() -> None:
    code = (
        "import sys, ditkit_testing; "
        "heavy = [m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules]; "
        "assert not heavy, heavy; print(ditkit_testing.__version__)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ditkit_testing.__version__


def test_lazy_helpers() -> None:
    assert callable(ditkit_testing.state_digest) and callable(ditkit_testing.realign)
    with pytest.raises(AttributeError):
        _ = ditkit_testing.no_such_helper
