"""Model families as data: one :class:`~ditkit_interfaces.TransformerSpec` per diffusers
transformer class, keyed by the pipeline-class prefix, split by modality.

Example:
    >>> from ditkit_cache.families import IMAGE_FAMILIES
    >>> IMAGE_FAMILIES["Flux"].block_names()
    ('transformer_blocks', 'single_transformer_blocks')
"""

from .image import IMAGE_FAMILIES, UNSUPPORTED_IMAGE
from .video import UNSUPPORTED_VIDEO, VIDEO_FAMILIES

#: pipeline-class prefix -> why ditkit refuses it (rather than applying a wrong spec)
UNSUPPORTED: dict[str, str] = {**UNSUPPORTED_IMAGE, **UNSUPPORTED_VIDEO}

__all__ = [
    "IMAGE_FAMILIES",
    "UNSUPPORTED",
    "UNSUPPORTED_IMAGE",
    "UNSUPPORTED_VIDEO",
    "VIDEO_FAMILIES",
]
