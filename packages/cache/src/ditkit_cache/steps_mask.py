"""Steps computation masks: which denoising steps always run the full transformer.

A mask has one entry per denoising step: ``1`` means the step is always computed, ``0`` that it
may be served from the cache (under ``steps_computation_policy="dynamic"`` the residual threshold
still decides; under ``"static"`` it is cached unconditionally). :func:`steps_mask` builds a mask
from explicit run lengths or from one of four named policies, with cache-dit 1.5.3's exact
results except for two documented fixes (docs/compat.md, "Steps mask and config loading"):

- ``fast`` and ``ultra`` for 16–27 steps: cache-dit truncates the 28-step bins from the end, which
  drops the trailing single-step compute bins and leaves cache runs of up to 15 steps (fast, 16
  steps: ``1111100000000001``). ditkit shrinks the 28-step bins proportionally instead, the
  mirror image of how cache-dit stretches them beyond 28 steps: the computed fraction stays
  within ``0.5 / total_steps`` of the 28-step mask's and no cache run is longer than its longest.
- ``block_range(start, end, step=1)`` returns the range instead of ``[]``.

Example:
    >>> from ditkit_cache.steps_mask import block_range, steps_mask
    >>> "".join(map(str, steps_mask(mask_policy="fast", total_steps=28)))
    '1111110100010000100000100001'
    >>> "".join(map(str, steps_mask(mask_policy="f", total_steps=16)))
    '1110100001000001'
    >>> steps_mask(compute_bins=[4, 2], cache_bins=[1, 3])
    [1, 1, 1, 1, 0, 1, 1, 0, 0, 0]
    >>> block_range(0, 12, 4), block_range(0, 4)
    ([0, 4, 8, 11], [0, 1, 2, 3])
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ditkit_interfaces import ConfigError

__all__ = ["BASE_STEPS", "MASK_POLICIES", "RESCALED_POLICIES", "block_range", "steps_mask"]

#: The named policies, from the most faithful to the fastest.
MASK_POLICIES = ("slow", "medium", "fast", "ultra")
_POLICY_ALIASES = {"s": "slow", "m": "medium", "f": "fast", "u": "ultra"}

#: The schedule length the policies are defined for; other lengths are derived from it.
BASE_STEPS = 28

#: Policies whose 16–27-step masks are rescaled instead of truncated (the deliberate fix).
RESCALED_POLICIES = frozenset({"fast", "ultra"})

# (compute bins, cache bins): the mask alternates compute_bins[i] ones and cache_bins[i] zeros.
_Bins = tuple[tuple[int, ...], tuple[int, ...]]
_BASE_BINS: dict[str, _Bins] = {  # 28 steps
    "slow": ((8, 3, 3, 2, 1, 1), (1, 2, 2, 2, 3)),  # 18 computed
    "medium": ((6, 2, 2, 2, 2, 1), (1, 3, 3, 3, 3)),  # 15 computed
    "fast": ((6, 1, 1, 1, 1, 1), (1, 3, 4, 5, 4)),  # 11 computed
    "ultra": ((4, 1, 1, 1, 1), (2, 5, 6, 7)),  # 8 computed
}
_SHORT_BINS: dict[str, _Bins] = {  # 10–15 steps (15 in total, truncated to the length)
    "slow": ((4, 2, 2, 2, 1), (1, 1, 1, 1)),
    "medium": ((4, 2, 1, 1, 1), (1, 1, 2, 2)),
    "fast": ((3, 1, 1, 1, 1), (1, 2, 2, 3)),
    "ultra": ((2, 1, 1, 1, 1), (1, 2, 3, 3)),
}
_NINE_STEP_BINS: dict[str, _Bins] = {  # e.g. Z-Image-Turbo
    "slow": ((5, 2, 1), (1,)),
    "medium": ((5, 1, 1), (1, 1)),
    "fast": ((4, 1, 1), (1, 2)),
    "ultra": ((3, 1, 1), (2, 2)),
}
_EIGHT_STEP_BINS: dict[str, _Bins] = {
    "slow": ((5, 1, 1), (1,)),
    "medium": ((4, 1, 1), (1, 1)),
    "fast": ((3, 1, 1), (1, 2)),
    "ultra": ((2, 1, 1), (2, 2)),
}
_TINY_BINS: dict[int, _Bins] = {4: ((2, 1), (1,)), 6: ((3, 1), (2,))}  # every policy


def steps_mask(
    compute_bins: Sequence[int] | None = None,
    cache_bins: Sequence[int] | None = None,
    total_steps: int | None = None,
    mask_policy: str | None = "medium",
) -> list[int]:
    """Build a steps computation mask (``1`` = always compute, ``0`` = may cache).

    With ``compute_bins`` and ``cache_bins`` the mask alternates ``compute_bins[i]`` ones and
    ``cache_bins[i]`` zeros (``compute_bins`` may have one more entry, so the mask can end on
    computed steps), cut to ``total_steps`` when given; the last step is *not* forced to 1.
    Otherwise ``mask_policy`` picks a named schedule for ``total_steps`` steps and the last step
    is always computed.

    Args:
        compute_bins (`Sequence[int]`, *optional*): lengths of the computed runs.
        cache_bins (`Sequence[int]`, *optional*): lengths of the cacheable runs in between.
        total_steps (`int`, *optional*): the mask length; required with ``mask_policy``. Policies
            support 4, 6 and every length from 8 up.
        mask_policy (`str`, defaults to `"medium"`): ``slow``, ``medium``, ``fast`` or ``ultra``
            (or ``s``/``m``/``f``/``u``, any case); ignored when both bin lists are given.

    Returns:
        `list[int]`: one 0/1 entry per step.

    Raises:
        ConfigError: a bin list without the other, bins that are negative, mis-paired or too
            short for ``total_steps``, an unknown policy, or an unsupported ``total_steps``.

    Example:
        >>> "".join(map(str, steps_mask(total_steps=8, mask_policy="Ultra")))
        '11001001'
        >>> steps_mask([2, 1], [1, 1], total_steps=5)
        [1, 1, 0, 1, 0]
    """
    if compute_bins is not None or cache_bins is not None:
        if compute_bins is None or cache_bins is None:
            given, missing = (
                ("compute_bins", "cache_bins")
                if cache_bins is None
                else ("cache_bins", "compute_bins")
            )
            raise ConfigError(
                missing,
                None,
                f"a list of run lengths to go with {given}",
                fix=f"pass both compute_bins and cache_bins, or neither to use mask_policy "
                f"(cache-dit silently ignored a lone {given})",
            )
        compute, cache = _check_bins(compute_bins, cache_bins)
        available = sum(compute) + sum(cache)
        if total_steps is None:
            total = available
        else:
            total = _check_steps(total_steps)
            if available < total:
                raise ConfigError(
                    "total_steps",
                    total_steps,
                    f"at most sum(compute_bins) + sum(cache_bins) = {available}",
                    fix=f"lengthen the bins by {total - available} steps, or lower total_steps",
                )
        return _layout(compute, cache, total)

    policy = _canonical_policy(mask_policy)
    if total_steps is None:
        raise ConfigError(
            "total_steps",
            None,
            "the number of denoising steps when using mask_policy",
            fix=f"call steps_mask(mask_policy={policy!r}, total_steps=<num_inference_steps>)",
        )
    total = _check_steps(total_steps)
    compute, cache = _policy_bins(policy, total)
    mask = _layout(compute, cache, total)
    mask[-1] = 1  # the last step is always computed
    return mask


def block_range(start: int, end: int, step: int = 1) -> list[int]:
    """Block indices ``range(start, end, step)`` plus the first block and the last (``end - 1``).

    Used for ``DBPruneConfig.non_prune_block_ids`` and similar block lists. An empty list comes
    back when ``start > end`` or ``end <= 0`` (as in cache-dit). Unlike cache-dit, ``step=1``
    (the default) gives the full range rather than ``[]``.

    Args:
        start (`int`): the first index of the strided range (>= 0).
        end (`int`): one past the last block; ``end - 1`` is always included.
        step (`int`, defaults to 1): the stride (>= 1).

    Returns:
        `list[int]`: sorted, without duplicates.

    Example:
        >>> block_range(1, 10, 3)
        [0, 1, 4, 7, 9]
        >>> block_range(5, 3, 2)
        []
    """
    for name, value, minimum in (("start", start, 0), ("end", end, None), ("step", step, 1)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(name, value, "an integer")
        if minimum is not None and value < minimum:
            raise ConfigError(
                name,
                value,
                f"an integer >= {minimum}",
                fix="block indices count from 0" if name == "start" else "use step=1 or more",
            )
    if start > end or end <= 0:
        return []
    return sorted({0, *range(start, end, step), end - 1})


# -- argument checks ---------------------------------------------------------------------
def _canonical_policy(mask_policy: object) -> str:
    if isinstance(mask_policy, str):
        key = mask_policy.strip().lower()
        key = _POLICY_ALIASES.get(key, key)
        if key in MASK_POLICIES:
            return key
    raise ConfigError(
        "mask_policy",
        mask_policy,
        "one of " + ", ".join(MASK_POLICIES) + " (or s, m, f, u; any case)",
        fix="pick a policy, or pass explicit compute_bins and cache_bins",
    )


def _check_steps(total_steps: object) -> int:
    if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 1:
        raise ConfigError(
            "total_steps",
            total_steps,
            "an integer >= 1",
            fix="pass the pipeline's num_inference_steps",
        )
    return total_steps


def _check_bins(
    compute_bins: Sequence[int], cache_bins: Sequence[int]
) -> tuple[list[int], list[int]]:
    bins = {"compute_bins": compute_bins, "cache_bins": cache_bins}
    for name, values in bins.items():
        if isinstance(values, str | bytes) or not isinstance(values, Sequence):
            raise ConfigError(name, values, "a list of run lengths (integers >= 0)")
        for value in values:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(
                    name,
                    list(values),
                    "run lengths that are integers >= 0",
                    fix=f"replace {value!r} with a step count",
                )
    compute, cache = list(compute_bins), list(cache_bins)
    if len(compute) not in (len(cache), len(cache) + 1):
        raise ConfigError(
            "compute_bins",
            compute,
            f"{len(cache)} or {len(cache) + 1} entries, to alternate with the "
            f"{len(cache)} cache_bins",
            fix="merge consecutive runs of the same kind into one bin",
        )
    if sum(compute) + sum(cache) == 0:
        raise ConfigError(
            "compute_bins", compute, "bins covering at least one step", fix="give a run length > 0"
        )
    return compute, cache


# -- mask construction -------------------------------------------------------------------
def _layout(compute: Sequence[int], cache: Sequence[int], total: int) -> list[int]:
    """Interleave the runs (compute first) and cut the result to ``total`` steps."""
    mask: list[int] = []
    for index in range(max(len(compute), len(cache))):
        if index < len(compute):
            mask += [1] * compute[index]
        if index < len(cache):
            mask += [0] * cache[index]
    return mask[:total]


def _policy_bins(policy: str, total: int) -> tuple[list[int], list[int]]:
    """The bins of ``policy`` for a ``total``-step schedule (their sum is exactly ``total``)."""
    if total > BASE_STEPS:
        compute, cache = _expand(*_BASE_BINS[policy], total)
    elif total == BASE_STEPS:
        compute, cache = map(list, _BASE_BINS[policy])
    elif total >= 16:
        if policy in RESCALED_POLICIES:
            return _rescale(*_BASE_BINS[policy], total)
        compute, cache = map(list, _BASE_BINS[policy])
    elif total >= 10:
        compute, cache = map(list, _SHORT_BINS[policy])
    elif total == 9:
        compute, cache = map(list, _NINE_STEP_BINS[policy])
    elif total == 8:
        compute, cache = map(list, _EIGHT_STEP_BINS[policy])
    elif total in _TINY_BINS:
        compute, cache = map(list, _TINY_BINS[total])
    else:
        raise ConfigError(
            "total_steps",
            total,
            "4, 6 or at least 8 steps for a mask_policy",
            fix=f"pass explicit bins instead, e.g. steps_mask([{total - 2}, 1], [1], "
            f"total_steps={total})",
        )
    _trim(compute, cache, total)
    return compute, cache


def _trim(compute: list[int], cache: list[int], total: int) -> None:
    """Shorten the bins in place to ``total`` steps, one step at a time from the end.

    Each round removes a step from the last cache bin, then (if still too long) one from the last
    compute bin; emptied bins are dropped. This is cache-dit's truncation, kept for every length
    where it gives sensible masks.
    """
    while sum(compute) + sum(cache) > total:
        for bins in (cache, compute):
            if bins:
                bins[-1] -= 1
                if bins[-1] == 0:
                    bins.pop()
            if sum(compute) + sum(cache) <= total:
                return


def _expand(
    base_compute: Sequence[int], base_cache: Sequence[int], total: int
) -> tuple[list[int], list[int]]:
    """Grow the 28-step bins until they cover ``total`` (> 28) steps (then :func:`_trim`).

    Each pass adds to every paired bin a share proportional to its 28-step length (half of
    ``total / 28`` times it, at least one step), compute then cache, stopping as soon as the
    total is covered; a pass that ends short adds one step to the last compute bin.
    """
    compute, cache = list(base_compute), list(base_cache)
    factor = (total / BASE_STEPS) * 0.5
    compute_growth = [max(int(length * factor), 1) for length in base_compute]
    cache_growth = [max(int(length * factor), 1) for length in base_cache]

    def covered() -> bool:
        return sum(compute) + sum(cache) >= total

    while not covered():
        for index in range(min(len(compute), len(cache))):
            compute[index] += compute_growth[index]
            if covered():
                break
            cache[index] += cache_growth[index]
            if covered():
                break
        if covered():
            break
        compute[-1] += 1
    return compute, cache


def _rescale(
    base_compute: Sequence[int], base_cache: Sequence[int], total: int
) -> tuple[list[int], list[int]]:
    """Shrink the 28-step bins to ``total`` (< 28) steps, keeping the policy's proportions.

    The numbers of cached steps and of warm-up steps (the first compute run) scale by
    ``total / 28`` (rounded half up). The remaining computed steps close the cache gaps; when
    there are fewer of them than 28-step gaps, neighbouring gaps are merged (the later ones
    first). Gap lengths then follow the 28-step gaps' lengths (largest remainder), each capped
    at the 28-step mask's longest gap, and every compute run keeps at least one step. So the
    computed fraction is within ``0.5 / total`` of the 28-step one, no cache run is longer
    than the 28-step longest, the mask ends on a computed step, and ``total=28`` gives the
    28-step bins back.
    """
    scale = total / BASE_STEPS
    longest = max(base_cache)
    cached = _round_half_up(sum(base_cache) * scale)
    computed = total - cached
    warmup = max(1, _round_half_up(base_compute[0] * scale))
    gaps = min(len(base_cache), computed - warmup)
    while gaps * longest < cached:  # never taken for the built-in tables; keeps the bound
        cached, computed = cached - 1, computed + 1
        gaps = min(len(base_cache), computed - warmup)
    groups = _contiguous_groups(len(base_cache), gaps)
    gap_weights = [sum(base_cache[lo:hi]) for lo, hi in groups]
    run_weights = [sum(base_compute[lo + 1 : hi + 1]) for lo, hi in groups]
    cache = _apportion(cached, gap_weights, floor=1, cap=longest)
    compute = [warmup, *_apportion(computed - warmup, run_weights, floor=1)]
    return compute, cache


def _round_half_up(value: float) -> int:
    return math.floor(value + 0.5)


def _contiguous_groups(count: int, groups: int) -> list[tuple[int, int]]:
    """Split ``range(count)`` into ``groups`` contiguous slices, the longer ones last."""
    size, extra = divmod(count, groups)
    bounds: list[tuple[int, int]] = []
    start = 0
    for index in range(groups):
        stop = start + size + (1 if index >= groups - extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds


def _apportion(total: int, weights: Sequence[int], floor: int, cap: int | None = None) -> list[int]:
    """Split ``total`` into integers proportional to ``weights`` (largest remainder).

    Each share stays within ``[floor, cap]``; ties go to the earlier share.
    """
    ideal = [total * weight / sum(weights) for weight in weights]
    shares = [max(floor, math.floor(x)) for x in ideal]
    if cap is not None:
        shares = [min(cap, share) for share in shares]
    while sum(shares) < total:
        open_ = [i for i, s in enumerate(shares) if cap is None or s < cap]
        pick = max(open_, key=lambda i: (ideal[i] - shares[i], -i))
        shares[pick] += 1
    while sum(shares) > total:
        open_ = [i for i, s in enumerate(shares) if s > floor]
        pick = min(open_, key=lambda i: (ideal[i] - shares[i], i))
        shares[pick] -= 1
    return shares
