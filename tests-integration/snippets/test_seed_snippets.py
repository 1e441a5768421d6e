"""Every cache snippet of the product documents (the seeds) runs through ditkit.

``manifest.yaml`` lists each snippet: where it is (seed file, first line), its text as the seed
has it, the edits that make it run here (each with its reason) and what must hold afterwards.
A case builds the edited text from the original and the edits, executes it statement by
statement in a namespace where a tiny pipeline stands for the snippet's model, and at the
checkpoints the manifest names checks the cache contexts ``summary()`` reports, the steps they
cached (exact lists, recorded once), and whether the output equals the uncached pipeline's bit
for bit or differs from it (where the edits force caching).

The tiny pipelines are built once per module and shared: every case checks that its pipeline
starts without cache and a finalizer disables whatever the snippet enabled.
"""

from __future__ import annotations

import ast
import builtins
import dataclasses
import hashlib
import logging
import os
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
import yaml

import ditkit
import ditkit_interfaces
from ditkit import BlockAdapterRegister
from ditkit_interfaces.registry import NameRegistry
from ditkit_testing import build_tiny_pipeline, tiny_call_kwargs
from ditkit_testing import flux as tiny_flux
from ditkit_testing import qwen_image as tiny_qwen
from ditkit_testing import wan as tiny_wan
from ditkit_testing.components import build_component

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
MANIFEST: dict[str, Any] = yaml.safe_load((HERE / "manifest.yaml").read_text(encoding="utf-8"))
ENTRIES: list[dict[str, Any]] = MANIFEST["snippets"]
# The seeds sit beside the checkout in the workspace; a clone elsewhere checks fingerprints only.
SEEDS = Path(os.environ.get("DITKIT_SEEDS_DIR", HERE.parents[2] / "shared" / "seeds"))
MOVED = 1e-6  # "differs from uncached": some pixel moved by more than this


# -- the tiny models ---------------------------------------------------------------------------
def _deeper(family: str, module: Any, **config: Any) -> Any:
    """The tiny ``family`` pipeline (seed 0) with a transformer of another depth (same widths)."""
    base = build_tiny_pipeline(family, 0)
    cls = type(base.transformer)
    transformer = build_component(
        lambda: cls(**{**module.TRANSFORMER_CONFIG, **config}), 0, "transformer"
    )
    pipe = type(base)(**{**base.components, "transformer": transformer})
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _wan22() -> Any:
    """Wan 2.2's MoE layout: two 10-block experts, switched at ``boundary_ratio=0.875``."""
    from diffusers import WanPipeline, WanTransformer3DModel

    base = _deeper("wan", tiny_wan, num_layers=10)
    expert = build_component(
        lambda: WanTransformer3DModel(**{**tiny_wan.TRANSFORMER_CONFIG, "num_layers": 10}),
        1,
        "transformer",
    )
    pipe = WanPipeline(**{**base.components, "transformer_2": expert, "boundary_ratio": 0.875})
    pipe.set_progress_bar_config(disable=True)
    return pipe


@dataclasses.dataclass(frozen=True)
class Model:
    """A tiny pipeline the snippets run on."""

    family: str  # ditkit_testing's name, for tiny_call_kwargs
    build: Callable[[], Any]


MODELS: dict[str, Model] = {
    # 16 double + 16 single blocks: the seeds' F8, F8B8 and non_prune_block_ids 16..23 fit
    "flux-32": Model(
        "flux", lambda: _deeper("flux", tiny_flux, num_layers=16, num_single_layers=16)
    ),
    # 2 double + 7 single blocks, one cached list of 9: default F8B0, quick to trace with dynamo
    "flux-9": Model("flux", lambda: _deeper("flux", tiny_flux, num_layers=2, num_single_layers=7)),
    "qwen_image": Model("qwen_image", lambda: build_tiny_pipeline("qwen_image", 0)),
    # 10 blocks: the default DBCacheConfig (F8B0) fits and leaves 2 blocks to cache
    "qwen_image-10": Model("qwen_image", lambda: _deeper("qwen_image", tiny_qwen, num_layers=10)),
    "wan2.2-10": Model("wan", _wan22),
}
TRANSFORMERS = ("transformer", "transformer_2")


def call_kwargs_for(model: str, steps: int) -> dict[str, Any]:
    return tiny_call_kwargs(MODELS[model].family, num_inference_steps=steps)


def pixels(output: Any) -> torch.Tensor:
    frames = getattr(output, "frames", None)
    return frames if frames is not None else output.images


def transformers_of(pipe: Any) -> list[torch.nn.Module]:
    found = (getattr(pipe, name, None) for name in TRANSFORMERS)
    return [module for module in found if isinstance(module, torch.nn.Module)]


def assert_pristine(pipe: Any) -> None:
    """No cache anywhere: the pipeline's own class, no patched forward, nothing to summarize."""
    assert getattr(type(pipe), "_ditkit_original_class", None) is None, "pipeline still wrapped"
    assert ditkit.summary(pipe, logging=False) == []
    for module in transformers_of(pipe):
        assert "forward" not in vars(module), f"{type(module).__name__}.forward still patched"
        assert ditkit.summary(module, logging=False) == []


class Pipelines:
    """This module's tiny pipelines, built on first use, and their uncached outputs."""

    def __init__(self) -> None:
        self.pipes: dict[str, Any] = {}
        self.references: dict[tuple[str, int], torch.Tensor] = {}

    def get(self, name: str) -> Any:
        if name not in self.pipes:
            self.pipes[name] = MODELS[name].build()
        return self.pipes[name]

    def uncached(self, name: str, steps: int) -> torch.Tensor:
        """The pristine pipeline's output (first asked for before the case enables a cache)."""
        if (name, steps) not in self.references:
            pipe = self.get(name)
            assert_pristine(pipe)
            self.references[name, steps] = pixels(pipe(**call_kwargs_for(name, steps)))
        return self.references[name, steps]


class HiDreamImagePipeline(SimpleNamespace):
    """Stands in for diffusers' HiDream pipeline, whose four text encoders are too big to build;
    the registry matches pipelines by class name, so the stand-in carries that name."""


def hidream_stand_in() -> HiDreamImagePipeline:
    from diffusers import HiDreamImageTransformer2DModel

    config = dict(
        patch_size=2,
        in_channels=4,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=8,
        num_attention_heads=2,
        caption_channels=[8, 8],
        text_emb_dim=8,
        num_routed_experts=2,
        num_activated_experts=1,
        axes_dims_rope=(4, 4),
        max_resolution=(8, 8),
        llama_layers=[0, 1],
    )
    transformer = build_component(
        lambda: HiDreamImageTransformer2DModel(**config), 0, "transformer"
    )
    return HiDreamImagePipeline(transformer=transformer)


def exception(name: str) -> type[BaseException]:
    """An exception class named in the manifest: ditkit's errors or a builtin."""
    found = getattr(ditkit_interfaces, name, None) or getattr(builtins, name)
    assert isinstance(found, type) and issubclass(found, BaseException), name
    return found


# -- fixtures ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pipelines() -> Iterator[Pipelines]:
    # The tiny models are latency-bound: one intra-op thread runs them several times faster than
    # two on a 2-core runner, and the recorded cached steps were measured with one.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield Pipelines()
    finally:
        torch.set_num_threads(threads)


@pytest.fixture
def tiny(pipelines: Pipelines, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], Any]]:
    """``tiny(name)``: the shared pipeline, checked clean, and cleaned when the case ends.

    Also undoes what snippets change beyond the pipeline: registrations in the adapter
    registry (a private copy for the case) and dynamo's recompile limits.
    """
    registry = BlockAdapterRegister._adapters
    private: NameRegistry[Any] = NameRegistry(registry.name)
    for prefix in registry.prefixes():
        private.add(prefix, registry.match(prefix))
    monkeypatch.setattr(BlockAdapterRegister, "_adapters", private)
    dynamo = torch._dynamo.config
    limits = (dynamo.recompile_limit, dynamo.accumulated_recompile_limit)
    used: list[tuple[Any, dict[str, Any]]] = []

    def get(name: str) -> Any:
        pipe = pipelines.get(name)
        assert_pristine(pipe)
        used.append((pipe, {n: getattr(pipe, n, None) for n in TRANSFORMERS}))
        return pipe

    yield get
    dynamo.recompile_limit, dynamo.accumulated_recompile_limit = limits
    for pipe, originals in used:
        for name, module in originals.items():
            if getattr(pipe, name, None) is not module:  # e.g. by torch.compile(...)
                setattr(pipe, name, module)
                torch._dynamo.reset()
        ditkit.disable_cache(pipe)
        for module in transformers_of(pipe):
            ditkit.disable_cache(module)
        assert_pristine(pipe)


# -- the manifest's texts ----------------------------------------------------------------------
def normalized(text: str) -> str:
    """The text without trailing blanks on its lines (the seeds carry some; the manifest not)."""
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


def fingerprint(text: str) -> str:
    return hashlib.sha256(normalized(text).encode()).hexdigest()[:16]


def edited(entry: dict[str, Any], *, skip_fixes: bool = False) -> str:
    """The original with the entry's edits applied in order (``skip_fixes``: not the fixes)."""
    code = normalized(entry["original"])
    for edit in entry.get("edits", []):
        if skip_fixes and edit.get("fix"):
            continue
        if "strip_prompt" in edit:  # a doctest: keep the prompted lines, drop printed output
            prompt = edit["strip_prompt"]
            code = "\n".join(
                line.removeprefix(prompt) for line in code.splitlines() if line.startswith(prompt)
            )
        elif "append" in edit:
            code += "\n" + edit["append"].rstrip("\n")
        else:
            assert code.count(edit["old"]) == 1, f"{edit['old']!r} must occur exactly once"
            code = code.replace(edit["old"], edit["new"])
    return code


# -- running a snippet -------------------------------------------------------------------------
class Case:
    """One manifest entry: its namespace, its pipeline, and the checks to run."""

    def __init__(self, entry: dict[str, Any], tiny: Callable[[str], Any], pipelines: Pipelines):
        self.entry = entry
        self.checks: list[dict[str, Any]] = entry.get("checks", [])
        self.model: str | None = entry.get("model")
        self.steps: int = entry.get("steps", 0)
        self.pipelines = pipelines
        self.ns: dict[str, Any] = {"__name__": f"snippet_{entry['id'].replace('-', '_')}"}
        self.pipe: Any = None
        if self.model is not None:
            self.pipe = tiny(self.model)
            for check in self.checks:  # the references, while the pipeline is still pristine
                if "uncached" in check:
                    pipelines.uncached(self.model, check.get("steps", self.steps))
            self.ns.update(tiny_pipe=self.pipe, call_kwargs=self.call_kwargs)
        for name, what in entry.get("bind", {}).items():
            if what == "hidream-stand-in":
                self.ns[name] = hidream_stand_in()
            else:
                self.ns[name] = self.pipe if what == "pipeline" else getattr(self.pipe, what)
        exec(compile(entry.get("preamble", ""), "<preamble>", "exec"), self.ns)

    def call_kwargs(self, steps: int | None = None) -> dict[str, Any]:
        assert self.model is not None
        return call_kwargs_for(self.model, steps or self.steps)

    def run(self, code: str) -> None:
        """Execute ``code`` statement by statement; run each check when its statement comes."""
        pending = list(self.checks)
        counts: Counter[tuple[str, str]] = Counter()
        for statement in ast.parse(code).body:
            source = ast.get_source_segment(code, statement) or ""
            self._reach(pending, counts, "before", source)
            exec(compile(ast.Module([statement], []), f"<{self.entry['id']}>", "exec"), self.ns)
            self._reach(pending, counts, "after", source)
        for check in pending:
            assert not {"before", "after"} & set(check), f"checkpoint never reached: {check}"
            self.check(check)

    def _reach(
        self, pending: list[dict[str, Any]], counts: Counter[tuple[str, str]], key: str, source: str
    ) -> None:
        for prefix in {c[key] for c in pending if key in c}:
            counts[key, prefix] += source.startswith(prefix)
        for check in list(pending):
            prefix = check.get(key)
            if (
                prefix
                and source.startswith(prefix)
                and counts[key, prefix] == check.get("occurrence", 1)
            ):
                pending.remove(check)
                self.check(check)

    def check(self, check: dict[str, Any]) -> None:
        steps = check.get("steps", self.steps)
        if check.get("run"):  # the snippet leaves calling the pipeline to the user
            self.ns["output"] = self.pipe(**self.call_kwargs(steps))
        if "contexts" in check:
            self.check_contexts(check, steps)
        if "uncached" in check:
            output = pixels(self.ns[check.get("output", "output")])
            assert self.model is not None, "uncached needs a model"
            reference = self.pipelines.uncached(self.model, steps)
            if check["uncached"] == "same":
                assert torch.equal(output, reference), "the output differs from the uncached one"
            else:
                assert check["uncached"] == "differs", check
                moved = (output - reference).abs().max().item()
                assert moved > MOVED, f"caching was forced, yet the output moved only {moved}"
        if "no_cache" in check:
            assert ditkit.summary(eval(check["no_cache"], self.ns), logging=False) == []
            assert_pristine(self.pipe)
        for expression in check.get("asserts", []):
            assert eval(expression, self.ns), expression

    def check_contexts(self, check: dict[str, Any], steps: int) -> None:
        """``summary()``: one entry per expected block list (then one per transformer)."""
        if "stats" in check:
            stats = self.ns[check["stats"]]
        else:
            stats = ditkit.summary(eval(check.get("target", "pipe"), self.ns))
        expected = check["contexts"]
        transformers = check.get("transformers", 1)
        assert len(stats) == len(expected) + transformers, [s.name for s in stats]
        assert all(s.name.endswith("Model") for s in stats[len(expected) :]), stats
        for got, want in zip(stats, expected, strict=False):
            observed = observe(got)
            for key, value in want.items():
                assert observed[key] == value, f"{got.name}.{key}: {observed[key]} != {value}"
            assert all(0 <= step < steps for step in observed["cached"] + observed["cfg_cached"])


def observe(stats: Any) -> dict[str, Any]:
    """A ``CacheStats`` in the manifest's terms."""

    def diff_steps(diffs: dict[str, Any]) -> list[int]:
        return sorted(int(step) for step in diffs)

    return {
        "name": stats.name,
        "cached": list(stats.cached_steps),
        "cfg_cached": list(stats.cfg_cached_steps),
        "diff_steps": diff_steps(stats.residual_diffs),
        "cfg_diff_steps": diff_steps(stats.cfg_residual_diffs),
        "pruned_steps": list(stats.pruned_steps),
        "pruned_blocks": list(stats.pruned_blocks),
        "cfg_pruned_blocks": list(stats.cfg_pruned_blocks),
    }


def _params(entries: list[dict[str, Any]]) -> list[Any]:
    params = []
    for entry in entries:
        xfail = entry.get("xfail")
        marks = (
            [pytest.mark.xfail(strict=True, raises=exception(xfail["raises"]), reason=xfail["why"])]
            if xfail
            else []
        )
        params.append(pytest.param(entry, id=entry["id"], marks=marks))
    return params


# -- the tests ---------------------------------------------------------------------------------
@pytest.mark.parametrize("entry", _params(ENTRIES))
def test_seed_snippet(
    entry: dict[str, Any], tiny: Any, pipelines: Pipelines, caplog: pytest.LogCaptureFixture
) -> None:
    """The edited snippet runs (or raises what the manifest says); the expectations hold."""
    caplog.set_level(logging.INFO, logger="ditkit_cache")
    case = Case(entry, tiny, pipelines)
    raises = entry.get("raises")
    if raises is None:
        case.run(edited(entry))
    else:
        with pytest.raises(exception(raises["type"]), match=raises["match"]):
            case.run(edited(entry))
        assert_pristine(case.pipe)  # the error left nothing patched
    for text in entry.get("logged", []):
        assert text in caplog.text, f"{text!r} was not logged"


UNEDITED = [e for e in ENTRIES if "unedited_raises" in e]


@pytest.mark.parametrize("entry", UNEDITED, ids=[e["id"] for e in UNEDITED])
def test_unedited_snippet_fails(entry: dict[str, Any], tiny: Any, pipelines: Pipelines) -> None:
    """Without the edits marked ``fix``, the snippet fails the way the manifest records."""
    expected = entry["unedited_raises"]
    checks = [{"run": True}] if expected.get("run") else []
    case = Case({**entry, "checks": checks}, tiny, pipelines)
    with pytest.raises(tuple(map(exception, expected["types"])), match=expected.get("match")):
        case.run(edited(entry, skip_fixes=True))


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["id"] for e in ENTRIES])
def test_original_is_the_seeds_text(entry: dict[str, Any]) -> None:
    """The manifest's original is the seed's text (up to trailing blanks), where it says."""
    assert fingerprint(entry["original"]) == entry["fingerprint"], fingerprint(entry["original"])
    assert normalized(entry["original"]).splitlines()[0] == entry["first_line"]
    for edit in entry.get("edits", []):
        assert edit.get("reason"), (entry["id"], edit)
    if SEEDS.is_dir():
        for seed in [entry["seed"], *entry.get("also_in", [])]:
            text = normalized((SEEDS / seed).read_text(encoding="utf-8"))
            assert normalized(entry["original"]) in text, f"not verbatim in {seed}"
