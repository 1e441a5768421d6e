"""``steps_mask`` and ``block_range`` against the golden table recorded from cache-dit 1.5.3.

The table is generated once by ``tools/compat/gen_steps_mask_golden.py``; these tests never
need cache-dit. ditkit must equal it everywhere except the two documented fixes
(docs/compat.md, "Steps mask and config loading"), whose properties are asserted instead.
"""

import json
from pathlib import Path

import pytest

from ditkit_cache.steps_mask import (
    _BASE_BINS,
    BASE_STEPS,
    MASK_POLICIES,
    RESCALED_POLICIES,
    _rescale,
    block_range,
    steps_mask,
)
from ditkit_interfaces import ConfigError

GOLDEN = json.loads(
    (Path(__file__).parent / "golden" / "steps_mask_cache_dit_1_5_3.json").read_text()
)
FIXED_STEPS = range(16, BASE_STEPS)  # fix (b): fast/ultra for 16–27 steps


def digits(mask):
    return "".join(map(str, mask))


def longest_cache_run(mask):
    longest = run = 0
    for value in mask:
        run = run + 1 if value == 0 else 0
        longest = max(longest, run)
    return longest


def is_fixed(policy, steps):
    return policy in RESCALED_POLICIES and steps in FIXED_STEPS


POLICY_CASES = [
    (policy, int(steps), expected)
    for policy, table in GOLDEN["policies"].items()
    for steps, expected in table.items()
]


def test_golden_table_is_cache_dit_1_5_3_and_complete():
    assert GOLDEN["source"] == "cache-dit 1.5.3"
    assert set(GOLDEN["policies"]) == set(MASK_POLICIES)
    for table in GOLDEN["policies"].values():
        assert {4, 6, 8, 9, 10, 12, 16, 20, 25, 28, 30, 40, 50} <= {int(t) for t in table}


@pytest.mark.parametrize(
    ("policy", "steps", "expected"),
    [c for c in POLICY_CASES if isinstance(c[2], str) and not is_fixed(c[0], c[1])],
)
def test_policy_masks_equal_cache_dit(policy, steps, expected):
    assert digits(steps_mask(mask_policy=policy, total_steps=steps)) == expected


@pytest.mark.parametrize(
    ("policy", "steps"),
    [(p, t) for p, t, expected in POLICY_CASES if isinstance(expected, dict)],
)
def test_policy_lengths_cache_dit_rejects_raise_config_error(policy, steps):
    with pytest.raises(ConfigError, match="4, 6 or at least 8") as info:
        steps_mask(mask_policy=policy, total_steps=steps)
    assert info.value.field == "total_steps"
    assert "steps_mask([" in info.value.fix  # the way out: explicit bins


@pytest.mark.parametrize("case", GOLDEN["explicit_bins"], ids=lambda c: str(c["total_steps"]))
def test_explicit_bins_equal_cache_dit(case):
    args = (case["compute_bins"], case["cache_bins"], case["total_steps"])
    if isinstance(case["mask"], dict):
        with pytest.raises(ConfigError, match="sum"):
            steps_mask(*args)
    else:
        assert digits(steps_mask(*args)) == case["mask"]


@pytest.mark.parametrize("case", GOLDEN["block_range"], ids=lambda c: str(c["args"]))
def test_block_range_equals_cache_dit_except_step_1(case):
    start, end, step = case["args"]
    if step == 1:  # fix (a): cache-dit returned [] for the default step
        assert case["result"] == []
        assert block_range(start, end, step) == sorted({0, *range(start, end), end - 1})
    else:
        assert block_range(start, end, step) == case["result"]


def test_block_range_default_step_is_the_full_range():
    assert block_range(0, 5) == [0, 1, 2, 3, 4]
    assert block_range(3, 6) == [0, 3, 4, 5]


# -- fix (b): fast/ultra for 16–27 steps -----------------------------------------------------
@pytest.mark.parametrize("policy", sorted(RESCALED_POLICIES))
@pytest.mark.parametrize("steps", FIXED_STEPS)
def test_rescaled_masks_keep_the_28_step_proportions(policy, steps):
    base = steps_mask(mask_policy=policy, total_steps=BASE_STEPS)
    mask = steps_mask(mask_policy=policy, total_steps=steps)
    assert len(mask) == steps and set(mask) <= {0, 1}
    assert mask[0] == 1 and mask[-1] == 1
    # computed fraction within half a step of the 28-step one
    assert abs(sum(mask) / steps - sum(base) / BASE_STEPS) <= 0.5 / steps + 1e-12
    # no cache run longer than the 28-step mask's longest
    assert longest_cache_run(mask) <= longest_cache_run(base)
    # the warm-up (first compute run) scales with the schedule
    warmup = mask.index(0)
    assert warmup == max(1, round(_BASE_BINS[policy][0][0] * steps / BASE_STEPS + 1e-9))


@pytest.mark.parametrize(
    ("policy", "steps"),
    [(p, t) for p, t, _ in POLICY_CASES if is_fixed(p, t)],
)
def test_the_fix_removes_cache_dits_long_gaps(policy, steps):
    cache_dit_mask = [int(c) for c in GOLDEN["policies"][policy][str(steps)]]
    base = steps_mask(mask_policy=policy, total_steps=BASE_STEPS)
    ours = steps_mask(mask_policy=policy, total_steps=steps)
    assert longest_cache_run(ours) <= longest_cache_run(base)
    if steps <= 20:  # where cache-dit's truncation left gaps of 10 steps or more
        assert longest_cache_run(cache_dit_mask) >= 10 > longest_cache_run(ours)


@pytest.mark.parametrize(
    ("policy", "steps", "expected"),
    [
        ("fast", 16, "1110100001000001"),
        ("fast", 20, "11110100010001000001"),
        ("fast", 25, "1111101000100001000010001"),
        ("ultra", 16, "1101000100000001"),
        ("ultra", 20, "11100100000100000001"),
        ("ultra", 25, "1111000010000000100000001"),
    ],
)
def test_rescaled_masks_are_pinned(policy, steps, expected):
    assert digits(steps_mask(mask_policy=policy, total_steps=steps)) == expected


@pytest.mark.parametrize("policy", MASK_POLICIES)
def test_rescale_works_for_every_policy_and_returns_the_base_at_28(policy):
    # RESCALED_POLICIES can be widened safely: the rule keeps its properties for slow/medium too.
    compute, cache = _BASE_BINS[policy]
    assert _rescale(compute, cache, BASE_STEPS) == (list(compute), list(cache))
    for steps in FIXED_STEPS:
        new_compute, new_cache = _rescale(compute, cache, steps)
        assert sum(new_compute) + sum(new_cache) == steps
        assert min(new_compute) >= 1 and max(new_cache) <= max(cache)
        assert len(new_compute) == len(new_cache) + 1
        assert abs(sum(new_compute) / steps - sum(compute) / BASE_STEPS) <= 0.5 / steps + 1e-12


@pytest.mark.parametrize("policy", sorted(set(MASK_POLICIES) - RESCALED_POLICIES))
@pytest.mark.parametrize("steps", FIXED_STEPS)
def test_truncated_policies_stay_conservative(policy, steps):
    # slow/medium keep cache-dit's truncation: never faster than the 28-step policy promises.
    base = steps_mask(mask_policy=policy, total_steps=BASE_STEPS)
    mask = steps_mask(mask_policy=policy, total_steps=steps)
    assert mask.index(0) == base.index(0)  # the whole 28-step warm-up is kept
    assert sum(mask) / steps >= sum(base) / BASE_STEPS
    assert longest_cache_run(mask) <= longest_cache_run(base)


@pytest.mark.parametrize("policy", MASK_POLICIES)
def test_every_supported_length_gives_a_valid_mask(policy):
    for steps in [4, 6, *range(8, 130)]:
        mask = steps_mask(mask_policy=policy, total_steps=steps)
        assert len(mask) == steps and mask[-1] == 1 and set(mask) <= {0, 1}


def test_faster_policies_never_compute_more_steps():
    for steps in [4, 6, *range(8, 130)]:
        counts = [sum(steps_mask(mask_policy=p, total_steps=steps)) for p in MASK_POLICIES]
        assert counts == sorted(counts, reverse=True), steps


# -- aliases and argument checks ------------------------------------------------------------
@pytest.mark.parametrize(
    ("alias", "policy"),
    [("s", "slow"), ("M", "medium"), (" Fast ", "fast"), ("u", "ultra"), ("ULTRA", "ultra")],
)
def test_policy_aliases(alias, policy):
    for steps in (9, 20, 50):
        assert steps_mask(mask_policy=alias, total_steps=steps) == steps_mask(
            mask_policy=policy, total_steps=steps
        )


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        (dict(mask_policy="turbo", total_steps=20), "mask_policy", "slow, medium, fast, ultra"),
        (dict(mask_policy=None, total_steps=20), "mask_policy", "one of"),
        (dict(mask_policy="fast"), "total_steps", "number of denoising steps"),
        (dict(total_steps=0), "total_steps", ">= 1"),
        (dict(total_steps=True), "total_steps", ">= 1"),
        (dict(total_steps=20.0), "total_steps", ">= 1"),
        (dict(compute_bins=[4, 2]), "cache_bins", "to go with compute_bins"),
        (dict(cache_bins=[1]), "compute_bins", "to go with cache_bins"),
        (dict(compute_bins=[4, -1], cache_bins=[1]), "compute_bins", ">= 0"),
        (dict(compute_bins=[4], cache_bins=[1.5]), "cache_bins", ">= 0"),
        (dict(compute_bins=[4], cache_bins=[1, 2, 3]), "compute_bins", "3 or 4 entries"),
        (dict(compute_bins=[1, 1, 1], cache_bins=[1]), "compute_bins", "1 or 2 entries"),
        (dict(compute_bins=[0], cache_bins=[0]), "compute_bins", "at least one step"),
        (dict(compute_bins="1101", cache_bins=[1]), "compute_bins", "list of run lengths"),
        (dict(compute_bins=[2], cache_bins=[1], total_steps=4), "total_steps", "at most"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs, field, message):
    with pytest.raises(ConfigError, match=message) as info:
        steps_mask(**kwargs)
    assert info.value.field == field


def test_a_lone_bin_list_is_not_silently_ignored():
    # cache-dit falls back to mask_policy when only one bin list is given.
    with pytest.raises(ValueError, match="pass both compute_bins and cache_bins"):
        steps_mask(compute_bins=[4, 2, 2], total_steps=28)


def test_explicit_bins_ignore_the_policy_and_do_not_force_the_last_step():
    assert steps_mask([2, 1], [1, 1], 5, mask_policy="not a policy") == [1, 1, 0, 1, 0]
    assert steps_mask((3,), (2,)) == [1, 1, 1, 0, 0]


@pytest.mark.parametrize(
    ("args", "field"),
    [((0, 10, 0), "step"), ((0, 10, -2), "step"), ((-1, 10, 2), "start"), ((0, 10.0, 2), "end")],
)
def test_block_range_rejects_bad_arguments(args, field):
    with pytest.raises(ConfigError) as info:
        block_range(*args)
    assert info.value.field == field
