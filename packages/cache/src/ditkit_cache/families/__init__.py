"""Model families as data: one :class:`~ditkit_interfaces.TransformerSpec` per diffusers
transformer class, keyed by the pipeline-class prefix, split by modality.

A pipeline-only prefix (:data:`PIPELINE_ONLY`) reuses the spec of the family that owns its
pipelines' transformer class and is matched by pipeline class names only. The image ones are
keys of :data:`IMAGE_FAMILIES`; the video ones are kept apart in
:data:`PIPELINE_ONLY_VIDEO_FAMILIES` (:data:`VIDEO_FAMILIES` has one prefix per class).

Example:
    >>> from ditkit_cache.families import IMAGE_FAMILIES, PIPELINE_ONLY
    >>> IMAGE_FAMILIES["Flux"].block_names()
    ('transformer_blocks', 'single_transformer_blocks')
    >>> sorted(p for p in PIPELINE_ONLY if p.startswith(("Visual", "Wan")))
    ['VisualCloze', 'Wan22Vace']
"""

from .image import IMAGE_FAMILIES, PIPELINE_ONLY_IMAGE, UNSUPPORTED_IMAGE
from .video import (
    PIPELINE_ONLY_VIDEO,
    PIPELINE_ONLY_VIDEO_FAMILIES,
    UNSUPPORTED_VIDEO,
    VIDEO_FAMILIES,
)

#: pipeline-class prefixes matched by pipeline class names only (image and video).
PIPELINE_ONLY: frozenset[str] = PIPELINE_ONLY_IMAGE | PIPELINE_ONLY_VIDEO

#: pipeline-class prefix -> why ditkit refuses it (rather than applying a wrong spec)
UNSUPPORTED: dict[str, str] = {**UNSUPPORTED_IMAGE, **UNSUPPORTED_VIDEO}

__all__ = [
    "IMAGE_FAMILIES",
    "PIPELINE_ONLY",
    "PIPELINE_ONLY_IMAGE",
    "PIPELINE_ONLY_VIDEO",
    "PIPELINE_ONLY_VIDEO_FAMILIES",
    "UNSUPPORTED",
    "UNSUPPORTED_IMAGE",
    "UNSUPPORTED_VIDEO",
    "VIDEO_FAMILIES",
]
