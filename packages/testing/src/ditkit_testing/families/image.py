"""Tiny image transformers: name -> builder of (transformer, forward kwargs).

Every builder takes a seed and returns a randomly initialised diffusers transformer (2 heads,
small widths, 3-6 blocks, float32, eval mode) with the keyword arguments of one forward call;
``timestep`` (``t`` for Z-Image) is the value of the first denoising step, which a test scales
down step by step. Weights and inputs depend only on the seed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

__all__ = ["IMAGE_CASES"]

Case = tuple[Any, dict[str, Any]]


def _build(seed: int, make: Callable[[], Case]) -> Case:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        transformer, kwargs = make()
    transformer.eval()
    kwargs.setdefault("return_dict", False)
    return transformer, kwargs


def _unzero(model: torch.nn.Module) -> torch.nn.Module:
    """Give zero-initialised weights (adaLN-zero gates, zero output layers) small random values,
    so that every block changes the output of a freshly built model."""
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.numel() > 1 and not parameter.any():
                parameter.normal_(0.0, 0.2)
    return model


def _ids(height: int, width: int, text: int, axes: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Flux-style position ids: image (h*w, axes) and text (text, axes)."""
    img = torch.zeros(height, width, axes)
    img[..., 1] = torch.arange(height)[:, None]
    img[..., 2] = torch.arange(width)[None, :]
    return img.reshape(height * width, axes), torch.zeros(text, axes)


def sd3(seed: int) -> Case:
    from diffusers import SD3Transformer2DModel

    def make() -> Case:
        model = SD3Transformer2DModel(
            sample_size=8,
            patch_size=2,
            in_channels=4,
            num_layers=4,
            attention_head_dim=8,
            num_attention_heads=2,
            joint_attention_dim=16,
            caption_projection_dim=16,
            pooled_projection_dim=8,
            out_channels=4,
            pos_embed_max_size=16,
        )
        return model, dict(
            hidden_states=torch.randn(1, 4, 8, 8),
            encoder_hidden_states=torch.randn(1, 6, 16),
            pooled_projections=torch.randn(1, 8),
            timestep=torch.tensor([999.0]),
        )

    return _build(seed, make)


def pixart(seed: int) -> Case:
    from diffusers import PixArtTransformer2DModel

    def make() -> Case:
        model = PixArtTransformer2DModel(
            num_attention_heads=2,
            attention_head_dim=8,
            in_channels=4,
            out_channels=8,
            num_layers=4,
            cross_attention_dim=16,
            sample_size=8,
            patch_size=2,
            caption_channels=12,
            norm_num_groups=1,
        )
        return model, dict(
            hidden_states=torch.randn(1, 4, 8, 8),
            encoder_hidden_states=torch.randn(1, 6, 12),
            timestep=torch.tensor([999.0]),
            added_cond_kwargs={"resolution": None, "aspect_ratio": None},
        )

    return _build(seed, make)


def sana(seed: int) -> Case:
    from diffusers import SanaTransformer2DModel

    def make() -> Case:
        model = SanaTransformer2DModel(
            in_channels=4,
            out_channels=4,
            num_attention_heads=2,
            attention_head_dim=8,
            num_layers=4,
            num_cross_attention_heads=2,
            cross_attention_head_dim=8,
            cross_attention_dim=16,
            caption_channels=12,
            sample_size=8,
            patch_size=1,
        )
        return model, dict(
            hidden_states=torch.randn(1, 4, 8, 8),
            encoder_hidden_states=torch.randn(1, 6, 12),
            timestep=torch.tensor([999.0]),
        )

    return _build(seed, make)


def auraflow(seed: int) -> Case:
    from diffusers import AuraFlowTransformer2DModel

    def make() -> Case:
        model = AuraFlowTransformer2DModel(
            sample_size=8,
            patch_size=2,
            in_channels=4,
            num_mmdit_layers=2,
            num_single_dit_layers=4,
            attention_head_dim=8,
            num_attention_heads=2,
            joint_attention_dim=16,
            caption_projection_dim=16,
            out_channels=4,
            pos_embed_max_size=64,
        )
        return model, dict(
            hidden_states=torch.randn(1, 4, 8, 8),
            encoder_hidden_states=torch.randn(1, 6, 16),
            timestep=torch.tensor([999.0]),
        )

    return _build(seed, make)


def lumina2(seed: int) -> Case:
    from diffusers import Lumina2Transformer2DModel

    def make() -> Case:
        model = Lumina2Transformer2DModel(
            sample_size=8,
            patch_size=2,
            in_channels=4,
            hidden_size=16,
            num_layers=4,
            num_refiner_layers=1,
            num_attention_heads=2,
            num_kv_heads=2,
            multiple_of=16,
            axes_dim_rope=(4, 2, 2),
            axes_lens=(64, 16, 16),
            cap_feat_dim=12,
        )
        return model, dict(
            hidden_states=torch.randn(1, 4, 8, 8),
            encoder_hidden_states=torch.randn(1, 6, 12),
            encoder_attention_mask=torch.ones(1, 6, dtype=torch.bool),
            timestep=torch.tensor([0.999]),
        )

    return _build(seed, make)


def cogview3plus(seed: int) -> Case:
    from diffusers import CogView3PlusTransformer2DModel

    def make() -> Case:
        model = CogView3PlusTransformer2DModel(
            patch_size=2,
            in_channels=4,
            num_layers=4,
            attention_head_dim=8,
            num_attention_heads=2,
            out_channels=4,
            text_embed_dim=12,
            time_embed_dim=8,
            condition_dim=2,
            pos_embed_max_size=16,
            sample_size=8,
        )
        return model, dict(
            hidden_states=torch.randn(1, 4, 8, 8),
            encoder_hidden_states=torch.randn(1, 6, 12),
            timestep=torch.tensor([999.0]),
            original_size=torch.tensor([[64.0, 64.0]]),
            target_size=torch.tensor([[64.0, 64.0]]),
            crop_coords=torch.tensor([[0.0, 0.0]]),
        )

    return _build(seed, make)


def cogview4(seed: int) -> Case:
    from diffusers import CogView4Transformer2DModel

    def make() -> Case:
        model = CogView4Transformer2DModel(
            patch_size=2,
            in_channels=4,
            out_channels=4,
            num_layers=4,
            attention_head_dim=8,
            num_attention_heads=2,
            text_embed_dim=12,
            time_embed_dim=8,
            condition_dim=2,
            pos_embed_max_size=16,
            sample_size=8,
            rope_axes_dim=(4, 4),
        )
        return model, dict(
            hidden_states=torch.randn(1, 4, 8, 8),
            encoder_hidden_states=torch.randn(1, 6, 12),
            timestep=torch.tensor([999.0]),
            original_size=torch.tensor([[64.0, 64.0]]),
            target_size=torch.tensor([[64.0, 64.0]]),
            crop_coords=torch.tensor([[0.0, 0.0]]),
        )

    return _build(seed, make)


def _flux_like_inputs(channels: int, text_dim: int, guidance: bool = False) -> dict[str, Any]:
    img_ids, txt_ids = _ids(4, 4, 6)
    kwargs = dict(
        hidden_states=torch.randn(1, 16, channels),
        encoder_hidden_states=torch.randn(1, 6, text_dim),
        timestep=torch.tensor([0.999]),
        img_ids=img_ids,
        txt_ids=txt_ids,
    )
    if guidance:
        kwargs["guidance"] = torch.tensor([3.5])
    return kwargs


def flux2(seed: int) -> Case:
    from diffusers import Flux2Transformer2DModel

    def make() -> Case:
        model = Flux2Transformer2DModel(
            patch_size=1,
            in_channels=8,
            num_layers=2,
            num_single_layers=4,
            attention_head_dim=8,
            num_attention_heads=2,
            joint_attention_dim=16,
            timestep_guidance_channels=16,
            axes_dims_rope=(2, 2, 2, 2),
        )
        kwargs = _flux_like_inputs(8, 16, guidance=True)
        img_ids, txt_ids = _ids(4, 4, 6, axes=4)
        kwargs.update(img_ids=img_ids, txt_ids=txt_ids)
        return model, kwargs

    return _build(seed, make)


def ovis_image(seed: int) -> Case:
    from diffusers import OvisImageTransformer2DModel

    def make() -> Case:
        model = OvisImageTransformer2DModel(
            patch_size=1,
            in_channels=8,
            out_channels=8,
            num_layers=2,
            num_single_layers=4,
            attention_head_dim=8,
            num_attention_heads=2,
            joint_attention_dim=16,
            axes_dims_rope=(2, 2, 4),
        )
        return model, _flux_like_inputs(8, 16)

    return _build(seed, make)


def longcat_image(seed: int) -> Case:
    from diffusers import LongCatImageTransformer2DModel

    def make() -> Case:
        model = LongCatImageTransformer2DModel(
            patch_size=1,
            in_channels=8,
            num_layers=2,
            num_single_layers=4,
            attention_head_dim=8,
            num_attention_heads=2,
            joint_attention_dim=16,
            pooled_projection_dim=16,
            axes_dims_rope=[2, 2, 4],
        )
        return model, _flux_like_inputs(8, 16)

    return _build(seed, make)


def bria(seed: int) -> Case:
    from diffusers import BriaTransformer2DModel

    def make() -> Case:
        model = BriaTransformer2DModel(
            patch_size=1,
            in_channels=8,
            num_layers=2,
            num_single_layers=4,
            attention_head_dim=8,
            num_attention_heads=2,
            joint_attention_dim=16,
            axes_dims_rope=[2, 2, 4],
        )
        return model, _flux_like_inputs(8, 16)

    return _build(seed, make)


def hunyuan_image(seed: int) -> Case:
    from diffusers import HunyuanImageTransformer2DModel

    def make() -> Case:
        model = HunyuanImageTransformer2DModel(
            in_channels=4,
            out_channels=4,
            num_attention_heads=2,
            attention_head_dim=8,
            num_layers=2,
            num_single_layers=4,
            num_refiner_layers=1,
            patch_size=(1, 1),
            text_embed_dim=12,
            rope_axes_dim=(4, 4),
        )
        return model, dict(
            hidden_states=torch.randn(1, 4, 4, 4),
            encoder_hidden_states=torch.randn(1, 6, 12),
            encoder_attention_mask=torch.ones(1, 6, dtype=torch.bool),
            timestep=torch.tensor([999.0]),
        )

    return _build(seed, make)


def omnigen(seed: int) -> Case:
    from diffusers import OmniGenTransformer2DModel

    def make() -> Case:
        model = OmniGenTransformer2DModel(
            in_channels=4,
            patch_size=2,
            hidden_size=16,
            num_attention_heads=2,
            num_key_value_heads=2,
            intermediate_size=32,
            num_layers=4,
            pad_token_id=0,
            vocab_size=100,
            max_position_embeddings=256,
            original_max_position_embeddings=256,
            pos_embed_max_size=16,
            time_step_dim=16,
            rope_scaling={"short_factor": [1.0] * 4, "long_factor": [1.0] * 4},
        )
        text, image = 6, 16  # prompt tokens, latent patches (8x8 latent, patch 2)
        total = text + 1 + image  # + the time token
        return model, dict(
            hidden_states=torch.randn(1, 4, 8, 8),
            timestep=torch.tensor([0.999]),
            input_ids=torch.randint(1, 100, (1, text)),
            input_img_latents=[],
            input_image_sizes={},
            attention_mask=torch.ones(1, total, total),
            position_ids=torch.arange(total)[None],
        )

    return _build(seed, make)


def zimage(seed: int) -> Case:
    from diffusers import ZImageTransformer2DModel

    def make() -> Case:
        model = ZImageTransformer2DModel(
            all_patch_size=(2,),
            all_f_patch_size=(1,),
            in_channels=4,
            dim=16,
            n_layers=4,
            n_refiner_layers=1,
            n_heads=2,
            n_kv_heads=2,
            cap_feat_dim=12,
            axes_dims=[2, 2, 4],
            axes_lens=[64, 16, 16],
        )
        return model, dict(
            x=[torch.randn(4, 1, 8, 8)],
            t=torch.tensor([0.999]),
            cap_feats=[torch.randn(6, 12)],
        )

    return _build(seed, make)


def prx(seed: int) -> Case:
    from diffusers import PRXTransformer2DModel

    def make() -> Case:
        model = PRXTransformer2DModel(
            in_channels=4,
            patch_size=2,
            context_in_dim=12,
            hidden_size=16,
            mlp_ratio=2.0,
            num_heads=2,
            depth=4,
            axes_dim=[4, 4],
        )
        _unzero(model)
        return model, dict(
            hidden_states=torch.randn(1, 4, 8, 8),
            encoder_hidden_states=torch.randn(1, 6, 12),
            timestep=torch.tensor([999.0]),
        )

    return _build(seed, make)


def dit(seed: int) -> Case:
    from diffusers import DiTTransformer2DModel

    def make() -> Case:
        model = DiTTransformer2DModel(
            num_attention_heads=2,
            attention_head_dim=8,
            in_channels=4,
            out_channels=4,
            num_layers=4,
            norm_num_groups=1,
            sample_size=8,
            patch_size=2,
            num_embeds_ada_norm=10,
        )
        _unzero(model)
        return model, dict(
            hidden_states=torch.randn(1, 4, 8, 8),
            timestep=torch.tensor([999]),
            class_labels=torch.tensor([3]),
        )

    return _build(seed, make)


def chroma(seed: int) -> Case:
    from diffusers import ChromaTransformer2DModel

    def make() -> Case:
        model = ChromaTransformer2DModel(
            patch_size=1,
            in_channels=8,
            num_layers=2,
            num_single_layers=4,
            attention_head_dim=8,
            num_attention_heads=2,
            joint_attention_dim=16,
            axes_dims_rope=(2, 2, 4),
            approximator_num_channels=8,
            approximator_hidden_dim=16,
            approximator_layers=1,
        )
        return model, _flux_like_inputs(8, 16)

    return _build(seed, make)


def krea2(seed: int) -> Case:
    from diffusers import Krea2Transformer2DModel

    def make() -> Case:
        model = Krea2Transformer2DModel(
            in_channels=8,
            num_layers=4,
            attention_head_dim=8,
            num_attention_heads=2,
            num_key_value_heads=2,
            intermediate_size=32,
            timestep_embed_dim=16,
            text_hidden_dim=12,
            num_text_layers=1,
            text_num_attention_heads=2,
            text_num_key_value_heads=2,
            text_intermediate_size=16,
            num_layerwise_text_blocks=1,
            num_refiner_text_blocks=1,
            axes_dims_rope=(2, 2, 4),
        )
        position_ids = torch.cat([_ids(1, 6, 0)[0] * 0, _ids(4, 4, 0)[0]])
        return model, dict(
            hidden_states=torch.randn(1, 16, 8),
            encoder_hidden_states=torch.randn(1, 6, 1, 12),  # (batch, text, text layers, dim)
            timestep=torch.tensor([0.999]),
            position_ids=position_ids,
        )

    return _build(seed, make)


def lumina(seed: int) -> Case:
    from diffusers import LuminaNextDiT2DModel
    from diffusers.models.embeddings import get_2d_rotary_pos_embed_lumina

    def make() -> Case:
        model = LuminaNextDiT2DModel(
            sample_size=8,
            patch_size=2,
            in_channels=4,
            hidden_size=16,
            num_layers=4,
            num_attention_heads=2,
            num_kv_heads=2,
            multiple_of=16,
            learn_sigma=False,
            cross_attention_dim=12,
        )
        return model, dict(
            hidden_states=torch.randn(1, 4, 8, 8),
            encoder_hidden_states=torch.randn(1, 6, 12),
            encoder_mask=torch.ones(1, 6),
            image_rotary_emb=get_2d_rotary_pos_embed_lumina(8, 16, 16),
            cross_attention_kwargs={},
            timestep=torch.tensor([0.999]),
        )

    return _build(seed, make)


IMAGE_CASES: dict[str, Callable[[int], Case]] = {
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
}
