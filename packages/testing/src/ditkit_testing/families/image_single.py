"""Tiny image transformers with one stream through the blocks (text by cross-attention or joined).

Builders as in :mod:`.image_dual`: a seed in, a random tiny diffusers transformer (float32, eval
mode) and the keyword arguments of one forward call out, ``timestep`` at the first step.
"""

from __future__ import annotations

import torch

from ._common import Case, _build, _ids, _unzero


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


def ernie_image(seed: int) -> Case:
    from diffusers import ErnieImageTransformer2DModel

    def make() -> Case:
        model = ErnieImageTransformer2DModel(
            hidden_size=16,
            num_attention_heads=2,
            num_layers=4,
            ffn_hidden_size=32,
            in_channels=4,
            out_channels=4,
            patch_size=1,
            text_in_dim=12,
            rope_axes_dim=(4, 2, 2),
        )
        _unzero(model)
        return model, dict(
            hidden_states=torch.randn(1, 4, 4, 4),
            timestep=torch.tensor([999.0]),
            text_bth=torch.randn(1, 6, 12),
            text_lens=torch.tensor([5]),
        )

    return _build(seed, make)


def ideogram4(seed: int) -> Case:
    from diffusers import Ideogram4Transformer2DModel

    def make() -> Case:
        model = Ideogram4Transformer2DModel(
            in_channels=8,
            num_layers=4,
            attention_head_dim=8,
            num_attention_heads=2,
            intermediate_size=32,
            adaln_dim=8,
            llm_features_dim=12,
            mrope_section=(2, 1, 1),
        )
        _unzero(model)
        text, image = 6, 16
        positions = torch.zeros(1, text + image, 3, dtype=torch.long)
        positions[0, :text, 0] = torch.arange(text)
        positions[0, text:, 0] = text
        positions[0, text:, 1] = torch.arange(4).repeat_interleave(4)
        positions[0, text:, 2] = torch.arange(4).repeat(4)
        indicator = torch.tensor([[3] * text + [2] * image])
        return model, dict(
            hidden_states=torch.randn(1, text + image, 8),
            timestep=torch.tensor([0.999]),
            encoder_hidden_states=torch.randn(1, text + image, 12),
            position_ids=positions,
            segment_ids=torch.zeros(1, text + image, dtype=torch.long),
            indicator=indicator,
        )

    return _build(seed, make)


def nucleus_moe_image(seed: int) -> Case:
    from diffusers import NucleusMoEImageTransformer2DModel

    def make() -> Case:
        model = NucleusMoEImageTransformer2DModel(
            patch_size=2,
            in_channels=16,
            num_layers=5,
            attention_head_dim=8,
            num_attention_heads=2,
            joint_attention_dim=12,
            axes_dims_rope=(2, 2, 4),
            mlp_ratio=12.0,  # the dense feed-forward width rounds down to a multiple of 128
            num_experts=4,
            moe_intermediate_dim=16,
            capacity_factors=2.0,
            dense_moe_strategy="leave_first_three_and_last_block_dense",
        )
        with torch.no_grad():  # the packed experts are allocated with torch.empty
            for name, parameter in model.named_parameters():
                if name.endswith(("gate_up_proj", "down_proj")):
                    parameter.normal_(0.0, 0.2)
        _unzero(model)
        return model, dict(
            hidden_states=torch.randn(1, 16, 16),
            img_shapes=[(1, 4, 4)],
            encoder_hidden_states=torch.randn(1, 6, 12),
            encoder_hidden_states_mask=torch.ones(1, 6, dtype=torch.long),
            timestep=torch.tensor([0.999]),
        )

    return _build(seed, make)
