"""Tiny image transformers whose blocks carry two streams (text and image, MMDiT or Flux-like).

Each builder takes a seed and returns a randomly initialised diffusers transformer (2 heads,
small widths, 3-6 blocks, float32, eval mode) with the keyword arguments of one forward call;
``timestep`` is the value of the first denoising step, which a test scales down step by step.
Families whose forward needs a patch functor are in :mod:`.image_functors`.
"""

from __future__ import annotations

import torch

from ._common import Case, _build, _flux_like_inputs, _ids


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


def flux3(seed: int) -> Case:
    from diffusers import Flux3Transformer2DModel

    def make() -> Case:
        model = Flux3Transformer2DModel(
            in_channels=8,
            cond_in_channels=8,
            num_layers=1,
            num_single_layers=4,
            attention_head_dim=8,
            num_attention_heads=2,
            joint_attention_dim=16,
            timestep_channels=16,
            axes_dims_rope=(2, 2, 2, 2),
        )
        img_ids, txt_ids = _ids(4, 4, 6, axes=4)
        return model, dict(
            hidden_states=torch.randn(1, 16, 8),
            encoder_hidden_states=torch.randn(1, 6, 16),
            timestep=torch.tensor([0.999]),
            img_ids=img_ids,
            txt_ids=txt_ids,
        )

    return _build(seed, make)


def visualcloze(seed: int) -> Case:
    """FLUX.1's transformer, which the VisualCloze pipelines run (FLUX.1 itself has a full tiny
    pipeline)."""
    from diffusers import FluxTransformer2DModel

    def make() -> Case:
        model = FluxTransformer2DModel(
            patch_size=1,
            in_channels=8,
            num_layers=2,
            num_single_layers=4,
            attention_head_dim=8,
            num_attention_heads=2,
            joint_attention_dim=16,
            pooled_projection_dim=8,
            axes_dims_rope=(2, 2, 4),
        )
        kwargs = _flux_like_inputs(8, 16)
        kwargs["pooled_projections"] = torch.randn(1, 8)
        return model, kwargs

    return _build(seed, make)
