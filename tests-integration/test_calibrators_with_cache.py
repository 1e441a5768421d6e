"""ditkit-calibrators driven by the ditkit-cache engine on tiny pipelines (cache x calibrators).

The engine's calls are recorded by wrapping the calibrator builder: every calibrator the engine
builds is a :class:`Recorder` around the real one, logging each ``update`` (the Mn residual of a
computed step) and each ``approximate`` (the forecast the cached step used). The forecasts are
then recomputed from the recorded residuals with independent float64 implementations of the
formulas (Lagrange form for TaylorSeer, a transcription of cache-dit's FoCa, a numpy DMD).

Tolerance: the engine runs in float32, the references in float64; a forecast must match its
reference to ``max|got - want| <= 1e-4 * max|want|`` (measured: below 1e-6).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import ditkit
import ditkit_cache as dc
from ditkit_calibrators import DMDCalibrator, FoCaCalibrator, TaylorSeerCalibrator
from ditkit_calibrators import build_calibrator as real_builder
from ditkit_interfaces import (
    ConfigError,
    DMDCalibratorConfig,
    FoCaCalibratorConfig,
    ForwardPattern,
    TaylorSeerCalibratorConfig,
)
from ditkit_testing import build_tiny_pipeline, run_tiny_pipeline

os.environ.setdefault("HF_HUB_OFFLINE", "1")

STEPS = 14
# six uniform computed steps, a gap of five (DMD fits, FoCa's e > 3 branch), then a short gap
# after a non-uniform computed step (DMD's Taylor fallback)
MASK = [1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 0, 0]
CACHED = [i for i, m in enumerate(MASK) if m == 0]
CONFIGS = {
    # the exact polynomial: checked against an independent Lagrange reference below (the
    # default "trusted" extrapolation is unit-tested in the calibrators package)
    "taylorseer": TaylorSeerCalibratorConfig(
        taylorseer_order=2, calibrator_kwargs={"extrapolation": "newton"}
    ),
    "foca": FoCaCalibratorConfig(),
    "dmd": DMDCalibratorConfig(),
}
TOLERANCE = 1e-4


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def masked(**extra):
    options = {"steps_computation_policy": "static"} | extra
    return dc.DBCacheConfig(Fn_compute_blocks=1, steps_computation_mask=list(MASK), **options)


class Recorder:
    """A real calibrator, with every call the engine makes logged."""

    def __init__(self, inner):
        self.inner = inner
        self.step = None
        self.updates: list[tuple[int, torch.Tensor]] = []
        self.forecasts: list[tuple[int, torch.Tensor]] = []

    def reset(self):
        self.inner.reset()
        self.updates, self.forecasts = [], []

    def mark_step_begin(self, step):
        self.step = step
        self.inner.mark_step_begin(step)

    def update(self, value):
        self.updates.append((self.step, value.detach().clone()))
        self.inner.update(value)

    def approximate(self):
        result = self.inner.approximate()
        self.forecasts.append((self.step, result.detach().clone()))
        return result


class RecordingBuilder:
    def __init__(self):
        self.built: list[Recorder] = []

    def __call__(self, config):
        recorder = Recorder(real_builder(config))
        self.built.append(recorder)
        return recorder


# -- independent float64 references ------------------------------------------------------------
def lagrange(updates, step, order):
    """The polynomial of degree <= order through the last order+1 updates, at ``step``."""
    nodes = updates[-(order + 1) :]
    total = 0.0
    for j, (tj, yj) in enumerate(nodes):
        weight = 1.0
        for m, (tm, _) in enumerate(nodes):
            if m != j:
                weight *= (step - tm) / (tj - tm)
        total = total + yj.double() * weight
    return total


def foca_reference(updates, cached_steps):
    """cache-dit's FoCa (reference §3.6) replayed over the recorded computed steps."""
    events = sorted(
        [(t, "u", y.double()) for t, y in updates] + [(t, "a", None) for t in cached_steps]
    )
    full = full_prev = cur = cur_prev = None
    last = None
    out = {}
    for step, kind, y in events:
        if kind == "u":
            full_prev, full, cur_prev, cur, last = full, y, cur, y, step
            continue
        if cur_prev is None or full_prev is None:
            out[step] = full
            continue
        e = step - last
        slope = (full - full_prev) + (cur - cur_prev)
        pred = (
            full + (e / 2) * slope if e <= 3 else 3 / e * (full + 1.5 * slope) + (1 - 3 / e) * full
        )
        cur_prev, cur = cur, pred
        out[step] = pred
    return out


def dmd_reference(updates, step, history=6):
    """numpy DMD over the newest uniform snapshots (rank 1e-4 rule, ridge 1e-8), per item."""
    updates = updates[-history:]
    steps = [t for t, _ in updates]
    spacing, count = steps[-1] - steps[-2], 2
    while count < len(steps) and steps[-count] - steps[-count - 1] == spacing:
        count += 1
    if count < 4:
        return lagrange(updates, step, 1)
    snaps = np.stack([y.double().numpy() for _, y in updates[-count:]], axis=-1)
    items = snaps.reshape(snaps.shape[0], -1, count)
    k = (step - steps[-1]) / spacing
    preds = []
    for v in items:
        x, x_next = v[:, :-1], v[:, 1:]
        u, s, vh = np.linalg.svd(x, full_matrices=False)
        r = max(int((s > 1e-4 * s[0]).sum()), 1)
        projected = x_next @ vh[:r].conj().T / (s[:r] + 1e-8)
        lam, w = np.linalg.eig(u[:, :r].conj().T @ projected)
        phi = projected @ w
        b = np.linalg.lstsq(phi, v[:, -1].astype(complex), rcond=None)[0]
        preds.append((phi @ (lam.astype(complex) ** k * b)).real)
    return torch.from_numpy(np.stack(preds).reshape(updates[-1][1].shape))


def reference_forecasts(name, recorder):
    updates = recorder.updates
    if name == "foca":
        table = foca_reference(updates, [t for t, _ in recorder.forecasts])
        return [(t, table[t]) for t, _ in recorder.forecasts]
    refs = []
    for step, _ in recorder.forecasts:
        before = [(t, y) for t, y in updates if t < step]
        want = lagrange(before, step, 2) if name == "taylorseer" else dmd_reference(before, step)
        refs.append((step, want))
    return refs


def max_relative(got, want):
    return ((got.double() - want.double()).abs().max() / want.double().abs().max()).item()


# -- tests -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", CONFIGS)
def test_threshold_zero_is_bit_identical_to_uncached(name):
    pipe = build_tiny_pipeline("flux")
    uncached = run_tiny_pipeline(pipe, "flux", num_inference_steps=6)
    builder = RecordingBuilder()
    dc.enable_cache(
        pipe,
        dc.DBCacheConfig(Fn_compute_blocks=1, residual_diff_threshold=0.0, max_warmup_steps=1),
        calibrator_config=CONFIGS[name],
        calibrator_builder=builder,
    )
    assert torch.equal(run_tiny_pipeline(pipe, "flux", num_inference_steps=6), uncached)
    assert builder.built and all(len(r.updates) == 6 and not r.forecasts for r in builder.built)


@pytest.mark.parametrize("name", CONFIGS)
def test_static_mask_uses_the_formula_on_the_recorded_residuals(name):
    plain = build_tiny_pipeline("flux")
    dc.enable_cache(plain, masked())
    plain_out = run_tiny_pipeline(plain, "flux", num_inference_steps=STEPS)

    pipe = build_tiny_pipeline("flux")
    builder = RecordingBuilder()
    dc.enable_cache(pipe, masked(), calibrator_config=CONFIGS[name], calibrator_builder=builder)
    out = run_tiny_pipeline(pipe, "flux", num_inference_steps=STEPS)
    assert dc.summary(pipe, logging=False)[0].cached_steps == CACHED
    assert torch.isfinite(out).all()
    assert (out - plain_out).abs().max().item() > 1e-4  # the forecast, not the stale residual

    assert len(builder.built) == 2  # hidden and encoder streams of the one list and branch
    worst = 0.0
    for recorder in builder.built:
        assert [t for t, _ in recorder.updates] == [i for i, m in enumerate(MASK) if m]
        assert [t for t, _ in recorder.forecasts] == CACHED
        for (step, got), (_, want) in zip(
            recorder.forecasts, reference_forecasts(name, recorder), strict=True
        ):
            error = max_relative(got, want)
            worst = max(worst, error)
            assert error <= TOLERANCE, (name, step, error)
        last_computed = recorder.updates[-1][1]
        assert not torch.equal(recorder.forecasts[-1][1], last_computed)
    if name == "dmd":
        inner = builder.built[0].inner
        assert isinstance(inner, DMDCalibrator) and inner.last_method == "taylor"
    print(f"{name}: worst relative forecast error {worst:.2e}")


def test_dmd_fits_on_the_real_residuals():
    class Spy(Recorder):
        def approximate(self):
            result = super().approximate()
            self.methods.append(self.inner.last_method)
            return result

    def spy_builder(config):
        spy = Spy(real_builder(config))
        spy.methods = []
        built.append(spy)
        return spy

    built: list[Spy] = []
    pipe = build_tiny_pipeline("flux")
    dc.enable_cache(
        pipe, masked(), calibrator_config=CONFIGS["dmd"], calibrator_builder=spy_builder
    )
    run_tiny_pipeline(pipe, "flux", num_inference_steps=STEPS)
    # steps 6-10 follow six uniform computed steps (a fit); 12-13 follow 0..5 + 11 (fallback)
    for spy in built:
        assert spy.methods == ["dmd"] * 5 + ["taylor"] * 2


def test_cfg_branches_have_separate_state():
    pipe = build_tiny_pipeline("qwen_image")
    builder = RecordingBuilder()
    dc.enable_cache(
        pipe, masked(), calibrator_config=CONFIGS["taylorseer"], calibrator_builder=builder
    )
    run_tiny_pipeline(pipe, "qwen_image", num_inference_steps=STEPS)
    contexts = pipe.transformer._ditkit_cache.contexts
    (context,) = contexts.values()
    cond, cfg = context.cond.calibrators, context.cfg.calibrators
    assert set(cond) == set(cfg) == {"hidden", "encoder"}
    for stream in ("hidden", "encoder"):
        a, b = cond[stream], cfg[stream]
        assert a is not b
        # one update per computed step each: the branches never feed each other
        for recorder in (a, b):
            assert [t for t, _ in recorder.updates] == [i for i, m in enumerate(MASK) if m]
            assert [t for t, _ in recorder.forecasts] == CACHED
            for (_, got), (_, want) in zip(
                recorder.forecasts, reference_forecasts("taylorseer", recorder), strict=True
            ):
                assert max_relative(got, want) <= TOLERANCE
        assert not torch.equal(a.updates[0][1], b.updates[0][1])


@pytest.mark.parametrize("policy", ["static", "dynamic"])
def test_a_static_mask_gives_taylorseer_the_request_length(policy):
    # both CFG branches (the second is built at its first call) learn N under a static mask,
    # which turns on the early damping of "trusted"; a dynamic mask's steps are not fixed
    pipe = build_tiny_pipeline("qwen_image")
    config = TaylorSeerCalibratorConfig(taylorseer_order=2)
    cache = masked() if policy == "static" else masked(steps_computation_policy="dynamic")
    dc.enable_cache(pipe, cache, calibrator_config=config)
    run_tiny_pipeline(pipe, "qwen_image", num_inference_steps=STEPS)
    (context,) = pipe.transformer._ditkit_cache.contexts.values()
    seers = [*context.cond.calibrators.values(), *context.cfg.calibrators.values()]
    assert len(seers) == 4 and all(isinstance(s, TaylorSeerCalibrator) for s in seers)
    want = STEPS if policy == "static" else None
    assert [s.static_steps for s in seers] == [want] * 4


def test_block_lists_have_separate_state():
    pipe = build_tiny_pipeline("flux")
    t = pipe.transformer
    adapter = dc.BlockAdapter(
        pipe=pipe,
        transformer=t,
        blocks=[t.transformer_blocks, t.single_transformer_blocks],
        forward_pattern=[ForwardPattern.Pattern_1, ForwardPattern.Pattern_1],
    )
    builder = RecordingBuilder()
    dc.enable_cache(
        adapter, masked(), calibrator_config=CONFIGS["foca"], calibrator_builder=builder
    )
    run_tiny_pipeline(pipe, "flux", num_inference_steps=STEPS)
    contexts = t._ditkit_cache.contexts
    assert len(contexts) == 2
    recorders = [r for c in contexts.values() for r in c.cond.calibrators.values()]
    assert len(recorders) == len({id(r) for r in recorders}) == 4
    hidden = [c.cond.calibrators["hidden"] for c in contexts.values()]
    assert not torch.equal(hidden[0].updates[0][1], hidden[1].updates[0][1])
    for recorder in recorders:
        assert [t for t, _ in recorder.updates] == [i for i, m in enumerate(MASK) if m]
        for (_, got), (_, want) in zip(
            recorder.forecasts, reference_forecasts("foca", recorder), strict=True
        ):
            assert max_relative(got, want) <= TOLERANCE


@pytest.mark.parametrize("name", CONFIGS)
def test_two_requests_give_identical_outputs(name):
    pipe = build_tiny_pipeline("qwen_image")
    dc.enable_cache(pipe, masked(), calibrator_config=CONFIGS[name])  # the entry point's builder
    first = run_tiny_pipeline(pipe, "qwen_image", num_inference_steps=STEPS)
    second = run_tiny_pipeline(pipe, "qwen_image", num_inference_steps=STEPS)
    assert torch.equal(first, second)


def test_umbrella_enable_cache_uses_the_calibrators_package():
    pipe = build_tiny_pipeline("flux")
    ditkit.enable_cache(pipe, masked(), calibrator_config=TaylorSeerCalibratorConfig())
    run_tiny_pipeline(pipe, "flux", num_inference_steps=STEPS)
    (context,) = pipe.transformer._ditkit_cache.contexts.values()
    seer = context.cond.calibrators["hidden"]
    assert isinstance(seer, TaylorSeerCalibrator) and seer.n_derivatives == 1
    assert seer.computed_steps == [11, 5]


def test_cache_engine_finds_the_builder_through_the_entry_point():
    pipe = build_tiny_pipeline("flux")
    dc.enable_cache(pipe, masked(), calibrator_config=FoCaCalibratorConfig())
    run_tiny_pipeline(pipe, "flux", num_inference_steps=STEPS)
    (context,) = pipe.transformer._ditkit_cache.contexts.values()
    assert {type(c) for c in context.cond.calibrators.values()} == {FoCaCalibrator}


YAML = """
cache_config:
  Fn_compute_blocks: 1
  steps_computation_mask: [{mask}]
  steps_computation_policy: static
  {switches}
"""

# (YAML lines, calibrator class, streams): the loader's encoder default is False for TaylorSeer
# and FoCa and follows the switch for DMD (cache-dit's loader)
SWITCHES = {
    "enable_taylorseer": (
        "enable_taylorseer: true\n  taylorseer_order: 2",
        TaylorSeerCalibrator,
        {"hidden"},
    ),
    "enable_foca": ("enable_foca: true", FoCaCalibrator, {"hidden"}),
    "enable_dmd": ("enable_dmd: true\n  dmd_history: 5", DMDCalibrator, {"hidden", "encoder"}),
}


@pytest.mark.parametrize("switch", SWITCHES)
def test_yaml_switches_end_to_end(switch, tmp_path):
    text, cls, streams = SWITCHES[switch]
    path = tmp_path / "cache.yaml"
    path.write_text(YAML.format(mask=", ".join(map(str, MASK)), switches=text))
    configs = ditkit.load_configs(str(path))
    pipe = build_tiny_pipeline("flux")
    ditkit.enable_cache(
        pipe,
        cache_config=configs["cache_config"],
        calibrator_config=configs["calibrator_config"],
    )
    out = run_tiny_pipeline(pipe, "flux", num_inference_steps=STEPS)
    assert torch.isfinite(out).all()
    (context,) = pipe.transformer._ditkit_cache.contexts.values()
    calibrators = context.cond.calibrators
    assert set(calibrators) == streams
    calibrator = calibrators["hidden"]
    assert type(calibrator) is cls
    if cls is TaylorSeerCalibrator:
        assert calibrator.n_derivatives == 2
    if cls is DMDCalibrator:
        assert calibrator.history == 5 and len(calibrator.snapshots) == 5


def test_yaml_switches_are_mutually_exclusive(tmp_path):
    path = tmp_path / "cache.yaml"
    path.write_text(
        YAML.format(
            mask=", ".join(map(str, MASK)), switches="enable_foca: true\n  enable_dmd: true"
        )
    )
    with pytest.raises(ConfigError, match="mutually exclusive"):
        ditkit.load_configs(str(path))


def test_hidden_states_cache_type_forecasts_the_mn_output():
    """``calibrator_cache_type="hidden_states"``: the calibrator sees the Mn output itself (not
    the Mn residual) and a cached step uses its forecast as the output of the middle blocks."""
    pipe = build_tiny_pipeline("flux")
    last_block = pipe.transformer.single_transformer_blocks[-1]  # Bn=0: the last Mn block
    mn_outputs: list[torch.Tensor] = []
    handle = last_block.register_forward_hook(
        lambda module, args, output: mn_outputs.append(output[1].detach().clone())
    )
    builder = RecordingBuilder()
    config = TaylorSeerCalibratorConfig(taylorseer_order=0, calibrator_cache_type="hidden_states")
    dc.enable_cache(pipe, masked(), calibrator_config=config, calibrator_builder=builder)
    hidden_mode = run_tiny_pipeline(pipe, "flux", num_inference_steps=STEPS)
    handle.remove()
    hidden_recorder = next(r for r in builder.built if r.updates)
    computed = [i for i, m in enumerate(MASK) if m == 1]
    assert [step for step, _ in hidden_recorder.updates] == computed
    assert len(mn_outputs) == len(computed)
    for (_, update), output in zip(hidden_recorder.updates, mn_outputs, strict=True):
        assert torch.equal(update, output)  # the stored value is the Mn output itself
    dc.disable_cache(pipe)
    residual_config = TaylorSeerCalibratorConfig(taylorseer_order=0)
    dc.enable_cache(pipe, masked(), calibrator_config=residual_config)
    residual_mode = run_tiny_pipeline(pipe, "flux", num_inference_steps=STEPS)
    assert not torch.equal(hidden_mode, residual_mode)
    assert torch.isfinite(hidden_mode).all()
