"""Write ``docs/support-matrix.md``: every model family the cache registers, refuses or lacks.

The page is generated from data, never edited by hand:

- ``ditkit_cache.registry.FAMILY_SPECS`` (one ``TransformerSpec`` per registered pipeline-class
  prefix; the pipeline-only prefixes, ``PIPELINE_ONLY``, reuse the spec of the family owning
  their transformer class) and ``ditkit_cache.families.UNSUPPORTED`` (prefix -> why ditkit
  refuses it);
- the pipeline classes the installed diffusers exports (``dir(diffusers)``), each given to the
  longest registered prefix it starts with, as the registry matches them;
- the tests: ``ditkit_testing.families.IMAGE_CASES`` / ``VIDEO_CASES`` (tiny transformer-only
  cases, ``packages/cache/tests/test_families_*.py``) and ``ditkit_testing.TINY_PIPELINES``
  (full tiny pipelines, ``packages/cache/tests``), each given to the family that
  ``BlockAdapterRegister.prefix`` resolves its pipeline class to (``PIPELINE_CLASS`` of
  ``ditkit_testing.<name>``: ``sd3`` -> ``StableDiffusion3Pipeline`` -> ``StableDiffusion3``);
- cache-dit 1.5.3's 45 registered prefixes (:data:`CACHE_DIT_PREFIXES`): each one ditkit neither
  registers nor refuses is listed with whether diffusers has its transformer class.

Usage: ``python tools/gen_support_matrix.py`` (write) or ``--check`` (exit 1 if the committed
page differs from what would be written).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "support-matrix.md"

#: cache-dit 1.5.3's ``BlockAdapterRegister`` prefixes (reference, §2.7), in its order.
CACHE_DIT_PREFIXES = (
    "Flux",
    "Mochi",
    "CogVideoX",
    "Wan",
    "HunyuanVideo",
    "QwenImage",
    "LTX",
    "Allegro",
    "CogView3Plus",
    "CogView4",
    "Cosmos",
    "EasyAnimate",
    "SkyReelsV2",
    "StableDiffusion3",
    "ConsisID",
    "DiT",
    "Amused",
    "BriaFibo",
    "Bria",
    "Lumina",
    "OmniGen",
    "PixArt",
    "Sana",
    "StableAudio",
    "VisualCloze",
    "AuraFlow",
    "Chroma",
    "ShapE",
    "HiDream",
    "HunyuanDiT",
    "HunyuanDiTPAG",
    "Kandinsky5",
    "PRX",
    "HunyuanImage",
    "ChronoEdit",
    "ZImage",
    "OvisImage",
    "LongCatImage",
    "GlmImage",
    "Helios",
    "ErnieImage",
    "BooguImage",
    "Krea2",
    "JoyImage",
    "AnyFlow",
)

#: cache-dit prefix -> (the transformer class it caches, what ditkit has to say about it), for
#: the prefixes ditkit may neither register nor refuse. Presence in diffusers is looked up.
MISSING_NOTES: dict[str, tuple[str, str]] = {
    "Amused": ("UVit2DModel", "a U-ViT (convolutional down/up around the layers), not a DiT"),
    "ShapE": ("PriorTransformer", "a 3D-asset prior transformer, not an image/video DiT"),
    "BooguImage": ("BooguImageTransformer2DModel", "not yet attempted"),
    "JoyImage": ("JoyImageEditTransformer3DModel", "not yet attempted"),
}

#: where a pipeline-only video prefix is resolved and cached by its pipeline name
_ONLY_TEST = "`packages/cache/tests/test_registry_pipeline_only_video.py`"

#: the issue's acceptance bar: distinct transformer classes the CPU tests run through the cache
MIN_TESTED_CLASSES = 40

#: Class names that end like a DiT transformer (for the "not yet attempted" list).
_TRANSFORMER_NAME = re.compile(r"(Transformer(2D|3D)?Model|DiT\w*Model|Transformer\w*Model)$")
_NOT_A_DIT = re.compile(r"ControlNet|PriorTransformer|Kolors|DualTransformer|T5Film")


def pipeline_transformer(pipeline: str) -> str | None:
    """The class name a diffusers pipeline annotates its ``transformer`` argument with, if any
    (modular pipelines and pipelines without a transformer have none)."""
    import diffusers

    try:
        parameter = inspect.signature(getattr(diffusers, pipeline).__init__).parameters
    except (AttributeError, ImportError, RuntimeError, TypeError, ValueError):
        return None
    annotation = parameter["transformer"].annotation if "transformer" in parameter else None
    return getattr(annotation, "__name__", None) if inspect.isclass(annotation) else None


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _code(items: Iterable[str]) -> str:
    return ", ".join(f"`{item}`" for item in items) or "—"


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _longest_prefix(name: str, prefixes: Iterable[str]) -> str | None:
    matches = [p for p in prefixes if name.startswith(p)]
    return max(matches, key=len) if matches else None


def _sources(builder: Callable[..., Any]) -> str:
    """The source of a case builder and of the functions it closes over (``@_seeded`` wraps)."""
    functions = [inspect.unwrap(builder)]
    for cell in getattr(functions[0], "__closure__", None) or ():
        try:
            content = cell.cell_contents
        except ValueError:
            continue
        if inspect.isfunction(content):
            functions.append(content)
    texts = []
    for function in functions:
        with contextlib.suppress(OSError, TypeError):
            texts.append(inspect.getsource(function))
    return "\n".join(texts)


def case_family(
    name: str,
    builder: Callable[..., Any],
    families: Mapping[str, Any],
    pipeline_only: Iterable[str] = (),
) -> str | None:
    """The registered prefix a tiny case exercises: its key when that is a prefix, else the family
    (never a pipeline-only prefix) whose transformer class the builder names (exactly one), else
    the longest prefix its name starts with (``ltx_video`` -> LTX)."""
    if name in families:
        return name
    source = _sources(builder)
    skipped = set(pipeline_only)
    named = {
        prefix
        for prefix, spec in families.items()
        if prefix not in skipped and re.search(rf"\b{re.escape(spec.transformer_class)}\b", source)
    }
    if len(named) == 1:
        return named.pop()
    by_name = {_norm(prefix): prefix for prefix in families}
    key = _longest_prefix(_norm(name), by_name)
    return by_name[key] if key else None


def tiny_pipeline_classes() -> dict[str, str]:
    """Each ``ditkit_testing.TINY_PIPELINES`` name -> the diffusers pipeline class it builds, read
    from the ``PIPELINE_CLASS`` constant of its module ``ditkit_testing.<name>`` (no building)."""
    import ditkit_testing

    return {
        name: importlib.import_module(f"ditkit_testing.{name}").PIPELINE_CLASS
        for name in ditkit_testing.TINY_PIPELINES
    }


def collect() -> dict[str, Any]:
    """Everything the page shows, as plain data (the integration test reads it too)."""
    import diffusers

    import ditkit_cache
    from ditkit_cache.families import IMAGE_FAMILIES, UNSUPPORTED
    from ditkit_cache.registry import FAMILY_SPECS, PIPELINE_ONLY, BlockAdapterRegister
    from ditkit_testing.families import IMAGE_CASES, VIDEO_CASES

    families = dict(FAMILY_SPECS)
    modality = {p: "image" if p in IMAGE_FAMILIES else "video" for p in families}
    # pipeline-only prefix -> the family owning its transformer class (whose spec it uses)
    owners = {
        p: BlockAdapterRegister.prefix(families[p].transformer_class) for p in sorted(PIPELINE_ONLY)
    }
    refused = {p: r for p, r in UNSUPPORTED.items() if p not in families}
    known = set(families) | set(refused)
    exported = sorted(set(dir(diffusers)))
    pipelines: dict[str, list[str]] = {}
    for name in exported:
        if name.endswith("Pipeline"):
            owner = _longest_prefix(name, known)
            if owner:
                pipelines.setdefault(owner, []).append(name)

    # pipelines whose transformer is another class than their family's: the registry would
    # hand them the family's spec by name (a wrong spec), so the page says so
    foreign: dict[str, str] = {}
    for prefix, names in pipelines.items():
        spec = families.get(prefix)
        for name in names if spec else ():
            cls = pipeline_transformer(name)
            if cls and not cls.startswith(spec.transformer_class):
                foreign[name] = cls

    cases: dict[str, list[str]] = {}
    unmapped: list[str] = []
    for name, builder in {**IMAGE_CASES, **VIDEO_CASES}.items():
        family = case_family(name, builder, families, PIPELINE_ONLY)
        if family is None:
            unmapped.append(name)
        else:
            cases.setdefault(family, []).append(name)
    pipeline_classes = tiny_pipeline_classes()
    full: dict[str, list[str]] = {}
    for name, pipeline_class in pipeline_classes.items():
        family = BlockAdapterRegister.prefix(pipeline_class)
        if family in families:
            full.setdefault(family, []).append(name)
        else:
            unmapped.append(name)
    tested = {*cases, *full}
    tested_classes = sorted({families[p].transformer_class for p in tested})

    missing = {}
    for prefix in CACHE_DIT_PREFIXES:
        if prefix in known:
            continue
        covered = _longest_prefix(prefix, known)
        found = [n for n in exported if n.endswith("Pipeline") and n.startswith(prefix)]
        if covered:
            state = "registered" if covered in families else "refused"
            missing[prefix] = (found, f"matched by the {state} prefix `{covered}` (above)")
            continue
        cls, note = MISSING_NOTES.get(prefix, ("", "not yet attempted"))
        if not cls:
            reason = f"no transformer class known; {note}"
        elif cls in exported:
            reason = f"`{cls}` is in diffusers {diffusers.__version__}; {note}"
        else:
            reason = f"`{cls}` is not in diffusers {diffusers.__version__}"
        missing[prefix] = (found, reason)

    mentioned = " ".join(
        [*(s.transformer_class for s in families.values()), *refused.values()]
        + [cls for cls, _ in MISSING_NOTES.values()]
    )
    others = [
        name
        for name in exported
        if _TRANSFORMER_NAME.search(name)
        and not _NOT_A_DIT.search(name)
        and not re.search(rf"\b{re.escape(name)}\b", mentioned)
    ]
    return {
        "diffusers": diffusers.__version__,
        "families": families,
        "modality": modality,
        "refused": refused,
        "pipelines": pipelines,
        "foreign": foreign,
        "cases": cases,
        "unmapped_cases": unmapped,
        "full": full,
        "pipeline_classes": pipeline_classes,
        "pipeline_only": owners,
        "tested_classes": tested_classes,
        "missing": missing,
        "others": others,
        "supported": ditkit_cache.supported_pipelines(),
    }


def _pipelines(names: Iterable[str], foreign: Mapping[str, str]) -> str:
    parts = [
        f"`{name}` (⚠ transformer `{foreign[name]}`)" if name in foreign else f"`{name}`"
        for name in names
    ]
    return ", ".join(parts) or "—"


def _blocks(spec: Any) -> str:
    parts = []
    for block in spec.blocks:
        text = f"`{block.attribute}` {block.forward_pattern.name}"
        parts.append(f"{text} (merged)" if block.dummy else text)
    return "<br>".join(parts)


def _tested(prefix: str, data: Mapping[str, Any]) -> str:
    parts = [f"CPU tiny case `{c}`" for c in sorted(data["cases"].get(prefix, ()))]
    parts += [
        f"full tiny pipeline `{p}` (`{data['pipeline_classes'][p]}`)"
        for p in sorted(data["full"].get(prefix, ()))
    ]
    owner = _same_spec_owner(prefix, data)
    if not parts and owner in data["cases"].keys() | data["full"].keys():
        parts.append(f"as `{owner}` (the same spec); pipeline-name resolution: {_ONLY_TEST}")
    return "<br>".join(parts) or "**no**"


def _same_spec_owner(prefix: str, data: Mapping[str, Any]) -> str | None:
    """The family whose very spec a pipeline-only prefix uses (``None``: not pipeline-only, or a
    spec of its own, e.g. the same blocks with another CFG mode)."""
    owner = data["pipeline_only"].get(prefix)
    families = data["families"]
    return owner if owner is not None and families[prefix] is families[owner] else None


def is_tested(prefix: str, data: Mapping[str, Any]) -> bool:
    """A tiny case or full pipeline runs the family (a pipeline-only prefix sharing its owner's
    spec: the owner's)."""
    ran = data["cases"].keys() | data["full"].keys()
    return prefix in ran or _same_spec_owner(prefix, data) in ran


def _transformer(prefix: str, data: Mapping[str, Any]) -> str:
    text = f"`{data['families'][prefix].transformer_class}`"
    owner = data["pipeline_only"].get(prefix)
    return f"{text} (pipeline-only, `{owner}`'s class)" if owner else text


def render(data: Mapping[str, Any]) -> str:
    families = data["families"]
    count, names = data["supported"]
    classes = data["tested_classes"]
    only = data["pipeline_only"]
    lines = [
        "<!-- generated by tools/gen_support_matrix.py; do not edit by hand -->",
        "",
        "# Support matrix",
        "",
        f"Model families the cache knows, against diffusers {data['diffusers']}. A family is one",
        "diffusers transformer class, keyed by the pipeline-class prefix the registry matches",
        "(`cls_name.startswith(prefix)`, longest prefix first). `ditkit.supported_pipelines()`",
        f"returns {count} prefixes: the rows of the first table ({len(only)} of them",
        "pipeline-only, see below).",
        "",
        f"**{len(classes)} distinct diffusers transformer classes are tested** on CPU through the",
        "cache (tiny random transformers and full tiny pipelines; the acceptance bar is at least",
        f"{MIN_TESTED_CLASSES}).",
        "",
        "Regenerate with `python tools/gen_support_matrix.py`; "
        "`tests-integration/test_support_matrix.py` fails when this page is stale.",
        "",
        "- **pipeline classes**: every pipeline diffusers exports whose name starts with the",
        "  prefix (and with no longer registered prefix). ⚠ marks a pipeline whose `transformer`",
        "  argument is annotated with another class: the prefix matches it, but the registry",
        "  checks the transformer's class and refuses it (UnsupportedModelError; not supported).",
        "- **blocks**: the cached block lists, in call order, with their forward pattern; a list",
        "  marked *merged* is emptied while the cached forward runs (a patch functor merged its",
        "  blocks into the list before it).",
        "- **separate CFG**: the pipeline calls the transformer twice per step (conditional, then",
        "  unconditional), so each branch has its own cache.",
        "- **pattern check**: the blocks' forward signatures are checked against their patterns",
        "  when the cache is enabled (*off*: checked by hand, the blocks name inputs differently).",
        "- **tested**: *CPU tiny case*: a tiny random transformer on the transformer-only path",
        "  (`packages/cache/tests/test_families_image.py`, `test_families_video.py`: threshold 0",
        "  bit-identical, static mask, `disable_cache`, DBPrune); *full tiny pipeline*: text",
        "  encoders, VAE and scheduler, end to end (`ditkit_testing.TINY_PIPELINES`,",
        "  `packages/cache/tests`), under the family its pipeline class resolves to; *as X*: a",
        "  pipeline-only prefix whose spec is tested through family X's cases.",
        "",
        f"## Supported ({len(families)})",
        "",
        "| family prefix | modality | transformer class | pipeline classes in diffusers | blocks "
        "(pattern) | separate CFG | patch functor | pattern check | tested |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for prefix in sorted(families):
        spec = families[prefix]
        functor = f"`{spec.patch_functor.rpartition(':')[2]}`" if spec.patch_functor else "—"
        row = [
            f"`{prefix}`",
            data["modality"][prefix],
            _transformer(prefix, data),
            _pipelines(data["pipelines"].get(prefix, ()), data["foreign"]),
            _blocks(spec),
            "yes" if spec.has_separate_cfg else "no",
            functor,
            "on" if spec.check_forward_pattern else "off",
            _tested(prefix, data),
        ]
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    lines += [
        "",
        f"Supported prefixes: {', '.join(f'`{n}`' for n in names)}.",
        "",
        f"Tested transformer classes ({len(classes)}): {_code(classes)}.",
        "",
        f"## Pipeline-only prefixes ({len(only)})",
        "",
        "Matched by pipeline class names only: their pipelines run the transformer class of",
        "another family, while a bare transformer of that class resolves to that family. Most",
        "use the family's spec itself; a pipeline that runs CFG differently has a spec of its",
        "own with the same blocks.",
        "",
        "| prefix | family owning the class | spec | transformer class | pipeline classes in "
        "diffusers |",
        "|---|---|---|---|---|",
    ]
    for prefix, owner in only.items():
        same = _same_spec_owner(prefix, data) == owner
        cfg = "yes" if families[prefix].has_separate_cfg else "no"
        row = [
            f"`{prefix}`",
            f"`{owner}`",
            f"`{owner}`'s" if same else f"its own (same blocks; separate CFG: {cfg})",
            f"`{families[prefix].transformer_class}`",
            _pipelines(data["pipelines"].get(prefix, ()), data["foreign"]),
        ]
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    lines += [
        "",
        f"## Refused or missing ({len(data['refused']) + len(data['missing'])})",
        "",
        "*Refused*: registered so that a matching pipeline raises `UnsupportedModelError` with",
        "the reason, instead of getting a wrong spec (a refused prefix is longer than the",
        "supported family it shadows). *Missing*: registered by cache-dit 1.5.3, not by ditkit.",
        "",
        "| family prefix | status | pipeline classes in diffusers | reason |",
        "|---|---|---|---|",
    ]
    rows = [(p, "refused", data["pipelines"].get(p, ()), r) for p, r in data["refused"].items()]
    rows += [(p, "missing", found, r) for p, (found, r) in data["missing"].items()]
    for prefix, status, found, reason in sorted(rows):
        row = [f"`{prefix}`", status, _code(found), reason]
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    if data["others"]:
        lines += [
            "",
            f"## Other transformer classes in diffusers {data['diffusers']} "
            f"({len(data['others'])})",
            "",
            "Exported by diffusers, neither registered nor refused by ditkit or cache-dit;",
            "not yet attempted:",
            "",
            _code(data["others"]) + ".",
        ]
    if data["unmapped_cases"]:
        lines += [
            "",
            "## Test cases without a family",
            "",
            _code(sorted(data["unmapped_cases"])) + ".",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the page is stale")
    parser.add_argument("--output", type=Path, default=PAGE, help="default: %(default)s")
    args = parser.parse_args(argv)
    text = render(collect())
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != text:
            print(
                f"{args.output} is stale: run python tools/gen_support_matrix.py", file=sys.stderr
            )
            return 1
        print(f"{args.output} is up to date")
        return 0
    args.output.write_text(text)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
