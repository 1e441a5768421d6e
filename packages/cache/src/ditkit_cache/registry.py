"""``BlockAdapterRegister``: which pipelines and transformers ditkit knows, as data.

A model family is one diffusers transformer class. Its entry is a
:class:`~ditkit_interfaces.TransformerSpec` (the block lists, their forward patterns, whether CFG
runs as a separate call) keyed by a class-name prefix; the prefix matches the pipeline's class
(``FluxPipeline``, ``FluxImg2ImgPipeline``, …) or, for transformer-only use, the transformer's
(``FluxTransformer2DModel``). A ``BlockSpec`` with ``dummy=True`` is merged into the list before
it (its blocks run inside that list's cached wrapper; the attribute is emptied during forward).
A pipeline-only prefix (:data:`PIPELINE_ONLY`: ``VisualCloze``, whose pipelines run
``FluxTransformer2DModel``; ``Wan22Vace``, whose modular pipeline runs ``WanVACE``'s class) is
matched by pipeline class names only; a bare transformer resolves to the family that owns its
class. Besides ``pipe.transformer`` the adapter caches the pipeline's other transformers of the
same class (:data:`EXTRA_TRANSFORMERS`: Wan 2.2's second expert, Ideogram 4's unconditional one).

Custom factories can still be registered the cache-dit way::

    @BlockAdapterRegister.register("MyModel")
    def my_adapter(pipe, **kwargs) -> BlockAdapter: ...

Example:
    >>> BlockAdapterRegister.is_supported("QwenImageEditPipeline")
    True
    >>> [BlockAdapterRegister.has_separate_cfg(p) for p in ("WanPipeline", "FluxPipeline")]
    [True, False]
    >>> BlockAdapterRegister.family("VisualClozePipeline") is FAMILY_SPECS["Flux"]
    True
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import torch

from ditkit_interfaces import (
    AdapterError,
    NameRegistry,
    TransformerSpec,
    UnsupportedModelError,
)

from .adapter import BlockAdapter, FakeDiffusionPipeline
from .families import (
    IMAGE_FAMILIES,
    PIPELINE_ONLY,
    PIPELINE_ONLY_VIDEO_FAMILIES,
    UNSUPPORTED,
    VIDEO_FAMILIES,
)

__all__ = [
    "EXTRA_TRANSFORMERS",
    "FAMILY_SPECS",
    "PIPELINE_ONLY",
    "SEPARATE_CFG_PREFIXES",
    "BlockAdapterRegister",
    "adapter_from_spec",
]

#: pipeline-class prefix -> spec: the data behind the registry (one module per modality; the
#: pipeline-only prefixes, :data:`PIPELINE_ONLY`, reuse the spec of the family owning the class).
FAMILY_SPECS: dict[str, TransformerSpec] = {
    **IMAGE_FAMILIES,
    **VIDEO_FAMILIES,
    **PIPELINE_ONLY_VIDEO_FAMILIES,
}

#: pipeline attributes holding further transformers that the same spec describes.
EXTRA_TRANSFORMERS = ("transformer_2", "unconditional_transformer")

#: cache-dit 1.5.3's list of pipeline prefixes whose CFG is a separate transformer call.
SEPARATE_CFG_PREFIXES = (
    "QwenImage",
    "Wan",
    "CogView4",
    "Cosmos",
    "SkyReelsV2",
    "Chroma",
    "Lumina2",
    "Kandinsky5",
    "ChronoEdit",
    "HunyuanVideo15",
    "OvisImage",
    "BooguImage",
    "JoyImage",
)

AdapterFactory = Callable[..., BlockAdapter]


def adapter_from_spec(pipe: Any, spec: TransformerSpec, **kwargs: Any) -> BlockAdapter:
    """A :class:`BlockAdapter` for ``pipe`` (or a bare transformer) built from a family spec.

    Further transformers of the pipeline (:data:`EXTRA_TRANSFORMERS`: Wan 2.2's low-noise expert
    ``transformer_2``, Ideogram 4's ``unconditional_transformer``) get the same lists.
    """
    transformers = [pipe.transformer]
    for attribute in EXTRA_TRANSFORMERS:
        extra = getattr(pipe, attribute, None)
        if isinstance(extra, torch.nn.Module) and extra is not pipe.transformer:
            transformers.append(extra)
    for transformer in transformers:
        lineage = {cls.__name__ for cls in type(transformer).__mro__}
        if spec.transformer_class not in lineage:
            raise UnsupportedModelError(
                f"{type(pipe).__name__} holds a {type(transformer).__name__}, not the "
                f"{spec.transformer_class} its family spec describes; describe it with "
                "BlockAdapter(transformer=..., blocks=..., forward_pattern=...)"
            )
    blocks, names, patterns, dummies = [], [], [], []
    for transformer in transformers:
        t_blocks, t_names, t_patterns = [], [], []
        for block_spec in spec.blocks:
            modules = getattr(transformer, block_spec.attribute, None)
            if not isinstance(modules, torch.nn.ModuleList):
                raise AdapterError(
                    f"{type(pipe).__name__}'s transformer {type(transformer).__name__} has no "
                    f"block list {block_spec.attribute!r} ({spec.transformer_class} expected); "
                    "describe it with BlockAdapter(transformer=, blocks=, forward_pattern=)"
                )
            if block_spec.dummy and t_blocks:
                t_blocks[-1] = torch.nn.ModuleList([*t_blocks[-1], *modules])
                dummies.append(block_spec.attribute)
                continue
            t_blocks.append(modules)
            t_names.append(block_spec.attribute)
            t_patterns.append(block_spec.forward_pattern)
        blocks.append(t_blocks)
        names.append(t_names)
        patterns.append(t_patterns)
    single = len(transformers) == 1
    if spec.patch_functor is not None and "patch_functor" not in kwargs:
        kwargs["patch_functor"] = _functor(spec.patch_functor)
    return BlockAdapter(
        pipe=pipe,
        transformer=transformers[0] if single else transformers,
        blocks=blocks[0] if single else blocks,
        blocks_name=names[0] if single else names,
        forward_pattern=patterns[0] if single else patterns,
        dummy_blocks_names=list(dict.fromkeys(dummies)),
        has_separate_cfg=spec.has_separate_cfg,
        check_forward_pattern=spec.check_forward_pattern,
        **kwargs,
    )


def _functor(name: str) -> Any:
    """An instance of the functor a spec names as ``"package.module:Class"``."""
    module, _, cls = name.partition(":")
    return getattr(importlib.import_module(module), cls)()


def _unsupported_factory(prefix: str, reason: str) -> AdapterFactory:
    def factory(pipe: Any, **kwargs: Any) -> BlockAdapter:
        raise UnsupportedModelError(
            f"{prefix}* is not supported yet: {reason}. Describe it with your own BlockAdapter "
            "(and PatchFunctor) if you know its blocks fit"
        )

    factory.supported = False  # type: ignore[attr-defined]
    return factory


def _spec_factory(spec: TransformerSpec) -> AdapterFactory:
    def factory(pipe: Any, **kwargs: Any) -> BlockAdapter:
        return adapter_from_spec(pipe, spec, **kwargs)

    factory.spec = spec  # type: ignore[attr-defined]
    return factory


class BlockAdapterRegister:
    """The registry of model families (class-level: it maps names to factories, holds no state)."""

    _adapters: NameRegistry[AdapterFactory] = NameRegistry("block adapters")
    _transformer_prefixes: NameRegistry[str] = NameRegistry("transformer classes")

    @classmethod
    def register(cls, name: str) -> Callable[[AdapterFactory], AdapterFactory]:
        """Decorator registering ``factory(pipe, **kwargs) -> BlockAdapter`` for a prefix."""

        def decorator(factory: AdapterFactory) -> AdapterFactory:
            cls._adapters.add(name, factory, replace=True)
            return factory

        return decorator

    @classmethod
    def _key(cls, pipe_or_module: Any) -> str:
        if isinstance(pipe_or_module, str):
            name = pipe_or_module
        else:
            target = pipe_or_module
            if isinstance(target, FakeDiffusionPipeline):
                target = target.transformer
            name = type(target).__name__
        return cls._transformer_prefixes.match(name) or name

    @classmethod
    def get_adapter(cls, pipe_or_module: Any, **kwargs: Any) -> BlockAdapter:
        """The registered adapter for a pipeline, a transformer, or a class name."""
        key = cls._key(pipe_or_module)
        factory = cls._adapters.match(key)
        if factory is None:
            name = (
                pipe_or_module if isinstance(pipe_or_module, str) else type(pipe_or_module).__name__
            )
            raise UnsupportedModelError(
                f"{name} is not a registered model family; describe its blocks with "
                "BlockAdapter(pipe=..., transformer=..., blocks=..., forward_pattern=...) "
                "(see supported_pipelines())"
            )
        if isinstance(pipe_or_module, str):
            raise UnsupportedModelError("get_adapter needs the pipeline or transformer itself")
        pipe = pipe_or_module
        if isinstance(pipe, torch.nn.Module):
            pipe = FakeDiffusionPipeline(pipe)
        return factory(pipe, **kwargs)

    @classmethod
    def prefix(cls, pipe_or_module: Any) -> str | None:
        """The registered prefix a pipeline, transformer or class name resolves to: the longest
        one its class name starts with (a bare transformer: its family's), or ``None``.

        Example:
            >>> [BlockAdapterRegister.prefix(n) for n in ("StableDiffusion3Pipeline",
            ...     "Wan22VaceModularPipeline", "WanVACETransformer3DModel", "UNet2DModel")]
            ['StableDiffusion3', 'Wan22Vace', 'WanVACE', None]
        """
        key = cls._key(pipe_or_module)
        matches = [prefix for prefix in cls._adapters.prefixes() if key.startswith(prefix)]
        return max(matches, key=len, default=None)

    @classmethod
    def is_supported(cls, pipe_or_module: Any) -> bool:
        factory = cls._adapters.match(cls._key(pipe_or_module))
        return factory is not None and getattr(factory, "supported", True)

    @classmethod
    def family(cls, pipe_or_module: Any) -> TransformerSpec | None:
        """The family spec a pipeline, transformer or class name resolves to (``None``: no spec,
        a custom factory or a refused prefix)."""
        return getattr(cls._adapters.match(cls._key(pipe_or_module)), "spec", None)

    @classmethod
    def has_separate_cfg(cls, pipe_or_module: Any) -> bool:
        """Whether CFG runs as a separate call: the family spec says so; for a custom factory,
        cache-dit's list of prefixes (:data:`SEPARATE_CFG_PREFIXES`) decides."""
        spec = cls.family(pipe_or_module)
        if spec is not None:
            return spec.has_separate_cfg
        key = cls._key(pipe_or_module)
        return any(key.startswith(prefix) for prefix in SEPARATE_CFG_PREFIXES)

    @classmethod
    def supported_pipelines(cls, **kwargs: Any) -> tuple[int, list[str]]:
        prefixes = [
            p
            for p in cls._adapters.prefixes()
            if getattr(cls._adapters.match(p), "supported", True)
        ]
        return len(prefixes), [f"{p}*" for p in prefixes]


for _prefix, _spec in FAMILY_SPECS.items():
    BlockAdapterRegister._adapters.add(_prefix, _spec_factory(_spec))
    if _prefix not in PIPELINE_ONLY:  # a transformer class resolves to exactly one family
        BlockAdapterRegister._transformer_prefixes.add(_spec.transformer_class, _prefix)
for _prefix, _reason in UNSUPPORTED.items():  # longer prefixes than the families they shadow
    if _prefix not in BlockAdapterRegister._adapters:
        BlockAdapterRegister._adapters.add(_prefix, _unsupported_factory(_prefix, _reason))
