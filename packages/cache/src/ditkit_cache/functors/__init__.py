"""Patch functors: forward rewrites that make a model's blocks fit a forward pattern.

A family spec names its functor as ``"ditkit_cache.functors.<module>:<Class>"``. Every functor is
exported here; where cache-dit 1.5.3 has the same functor (``cache_dit.caching.patch_functors``)
it carries cache-dit's class name, so ``patch_functor=HiDreamPatchFunctor()`` in code written
for cache-dit runs unchanged (the umbrella re-exports this module as
``ditkit.caching.patch_functors``). ``FluxPatchFunctor`` and ``QwenImageControlNetPatchFunctor``
keep cache-dit's names but do what ditkit needs on diffusers 0.42.1: move the control-net
residuals that the forward adds inside its block loop into the blocks, as
``SD3ControlNetPatchFunctor``, ``SanaControlNetPatchFunctor``, ``BriaControlNetPatchFunctor``,
``CosmosControlNetPatchFunctor`` and ``ChromaPatchFunctor`` do for theirs
(:mod:`.control_residuals`).

Example:
    >>> from ditkit_cache import functors
    >>> issubclass(functors.WanVACEPatchFunctor, functors.PatchFunctor)
    True
    >>> all(name.endswith("PatchFunctor") for name in functors.__all__)
    True
"""

from ..patch_functor import PatchFunctor
from .control_residuals import ControlResidualsPatchFunctor
from .image_bria_fibo import BriaFiboPatchFunctor
from .image_bria_fibo2 import BriaFibo2PatchFunctor
from .image_chroma import ChromaPatchFunctor
from .image_controlnet import (
    BriaControlNetPatchFunctor,
    FluxPatchFunctor,
    QwenImageControlNetPatchFunctor,
    SanaControlNetPatchFunctor,
    SD3ControlNetPatchFunctor,
)
from .image_dit import DiTPatchFunctor
from .image_ernie_image import ErnieImagePatchFunctor
from .image_glm_image import GlmImagePatchFunctor
from .image_hidream import HiDreamPatchFunctor
from .image_hunyuan_dit import HunyuanDiTPatchFunctor
from .image_qwen_image21 import QwenImage21PatchFunctor
from .image_zimage import ZImageControlNetPatchFunctor
from .video_ace_step import AceStepPatchFunctor
from .video_controlnet import CosmosControlNetPatchFunctor
from .video_cosmos3 import Cosmos3OmniPatchFunctor
from .video_latte import LattePatchFunctor
from .video_ltx2 import LTX2PatchFunctor
from .video_motif_video import MotifVideoPatchFunctor
from .video_wan_animate import WanAnimatePatchFunctor
from .video_wan_vace import WanVACEPatchFunctor

__all__ = [
    "AceStepPatchFunctor",
    "BriaControlNetPatchFunctor",
    "BriaFibo2PatchFunctor",
    "BriaFiboPatchFunctor",
    "ChromaPatchFunctor",
    "ControlResidualsPatchFunctor",
    "Cosmos3OmniPatchFunctor",
    "CosmosControlNetPatchFunctor",
    "DiTPatchFunctor",
    "ErnieImagePatchFunctor",
    "FluxPatchFunctor",
    "GlmImagePatchFunctor",
    "HiDreamPatchFunctor",
    "HunyuanDiTPatchFunctor",
    "LTX2PatchFunctor",
    "LattePatchFunctor",
    "MotifVideoPatchFunctor",
    "PatchFunctor",
    "QwenImage21PatchFunctor",
    "QwenImageControlNetPatchFunctor",
    "SD3ControlNetPatchFunctor",
    "SanaControlNetPatchFunctor",
    "WanAnimatePatchFunctor",
    "WanVACEPatchFunctor",
    "ZImageControlNetPatchFunctor",
]
