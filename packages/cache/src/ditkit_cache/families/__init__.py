"""Model families as data: one :class:`~ditkit_interfaces.TransformerSpec` per diffusers
transformer class, keyed by the pipeline-class prefix, split by modality.

Example:
    >>> from ditkit_cache.families import IMAGE_FAMILIES
    >>> IMAGE_FAMILIES["Flux"].block_names()
    ('transformer_blocks', 'single_transformer_blocks')
"""

from .image import IMAGE_FAMILIES
from .video import VIDEO_FAMILIES

__all__ = ["IMAGE_FAMILIES", "VIDEO_FAMILIES"]
