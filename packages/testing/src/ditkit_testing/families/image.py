"""Tiny image transformers: name -> builder of (transformer, forward kwargs).

Every builder takes a seed and returns a randomly initialised diffusers transformer (2 heads,
small widths, 3-6 blocks, float32, eval mode) with the keyword arguments of one forward call;
``timestep`` (``t`` for Z-Image, ``timesteps`` for HiDream) is the value of the first denoising
step, which a test scales down step by step. Weights and inputs depend only on the seed. The
builders live in :mod:`.image_dual` (two-stream blocks), :mod:`.image_single` (one stream) and
:mod:`.image_functors` (families whose forward needs a patch functor); the keys are the
registry's family prefixes.
"""

from __future__ import annotations

from ._common import Builder
from .image_dual import (
    auraflow,
    bria,
    cogview3plus,
    cogview4,
    flux2,
    flux3,
    hunyuan_image,
    longcat_image,
    ovis_image,
    sd3,
    visualcloze,
)
from .image_functors import (
    bria_fibo,
    bria_fibo2,
    chroma,
    dit,
    glm_image,
    hidream,
    hunyuan_dit,
    qwen_image21,
    zimage,
    zimage_controlnet,
)
from .image_single import (
    ernie_image,
    ideogram4,
    krea2,
    lumina,
    lumina2,
    nucleus_moe_image,
    omnigen,
    pixart,
    prx,
    sana,
)

__all__ = ["IMAGE_CASES"]

IMAGE_CASES: dict[str, Builder] = {
    "StableDiffusion3": sd3,
    "PixArt": pixart,
    "Sana": sana,
    "AuraFlow": auraflow,
    "Lumina2": lumina2,
    "CogView3Plus": cogview3plus,
    "CogView4": cogview4,
    "Flux2": flux2,
    "OvisImage": ovis_image,
    "LongCatImage": longcat_image,
    "Bria": bria,
    "OmniGen": omnigen,
    "PRX": prx,
    "DiT": dit,
    "Chroma": chroma,
    "Krea2": krea2,
    "Lumina": lumina,
    "HunyuanImage": hunyuan_image,
    "ZImage": zimage,
    "ZImageControlNet": zimage_controlnet,
    "HiDream": hidream,
    "HunyuanDiT": hunyuan_dit,
    "ErnieImage": ernie_image,
    "GlmImage": glm_image,
    "BriaFibo": bria_fibo,
    "BriaFibo2": bria_fibo2,
    "Flux3": flux3,
    "QwenImage21": qwen_image21,
    "Ideogram4": ideogram4,
    "NucleusMoEImage": nucleus_moe_image,
    # pipeline-only prefixes: the same transformer classes under their own family specs
    "VisualCloze": visualcloze,
    "HunyuanDiTPAG": hunyuan_dit,
    "Flux3Distilled": flux3,
    "QwenImage21Turbo": qwen_image21,
}
