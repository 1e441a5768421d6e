"""Tiny image transformers of the families whose forward needs a patch functor.

Builders as in :mod:`.image_dual`; ``timestep`` is ``t`` for Z-Image and ``timesteps`` for
HiDream. The inputs exercise what the functor moves into the blocks (control-net samples,
long skips, per-block text layers, per-block KV caches).
"""

from __future__ import annotations

import torch

from ._common import Case, _build, _flux_like_inputs, _unzero


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


def zimage_controlnet(seed: int) -> Case:
    def make() -> Case:
        model, kwargs = zimage(seed)
        shapes = []
        hook = model.layers[0].register_forward_hook(lambda m, a, o: shapes.append(o.shape))
        with torch.no_grad():
            model(**kwargs)
        hook.remove()
        kwargs["controlnet_block_samples"] = {i: 0.5 * torch.randn(shapes[0]) for i in (0, 1, 3)}
        return model, kwargs

    return _build(seed, make)


def hidream(seed: int) -> Case:
    from diffusers import HiDreamImageTransformer2DModel

    def make() -> Case:
        model = HiDreamImageTransformer2DModel(
            patch_size=2,
            in_channels=4,
            num_layers=2,
            num_single_layers=3,
            attention_head_dim=8,
            num_attention_heads=2,
            caption_channels=[12, 10],
            text_emb_dim=8,
            num_routed_experts=2,
            num_activated_experts=1,
            axes_dims_rope=(4, 2, 2),
            max_resolution=(8, 8),
            llama_layers=[0, 1, 2, 3, 4],
        )
        _unzero(model)
        return model, dict(
            hidden_states=torch.randn(1, 4, 8, 8),
            timesteps=torch.tensor([999.0]),
            encoder_hidden_states_t5=torch.randn(1, 6, 12),
            encoder_hidden_states_llama3=torch.randn(5, 1, 4, 10),
            pooled_embeds=torch.randn(1, 8),
        )

    return _build(seed, make)


def hunyuan_dit(seed: int) -> Case:
    from diffusers import HunyuanDiT2DModel
    from diffusers.models.embeddings import get_2d_rotary_pos_embed

    def make() -> Case:
        model = HunyuanDiT2DModel(
            num_attention_heads=2,
            attention_head_dim=8,
            in_channels=4,
            patch_size=2,
            sample_size=8,
            hidden_size=16,
            num_layers=6,
            cross_attention_dim=12,
            cross_attention_dim_t5=16,
            pooled_projection_dim=8,
            text_len=6,
            text_len_t5=5,
            use_style_cond_and_image_meta_size=False,
            learn_sigma=False,
        )
        _unzero(model)
        return model, dict(
            hidden_states=torch.randn(1, 4, 8, 8),
            timestep=torch.tensor([999.0]),
            encoder_hidden_states=torch.randn(1, 6, 12),
            text_embedding_mask=torch.ones(1, 6, dtype=torch.long),
            encoder_hidden_states_t5=torch.randn(1, 5, 16),
            text_embedding_mask_t5=torch.ones(1, 5, dtype=torch.long),
            image_rotary_emb=get_2d_rotary_pos_embed(8, ((0, 0), (4, 4)), (4, 4)),
        )

    return _build(seed, make)


def glm_image(seed: int) -> Case:
    from diffusers import GlmImageTransformer2DModel
    from diffusers.models.transformers.transformer_glm_image import GlmImageKVCache

    def make() -> Case:
        model = GlmImageTransformer2DModel(
            patch_size=2,
            in_channels=4,
            out_channels=4,
            num_layers=4,
            attention_head_dim=8,
            num_attention_heads=2,
            text_embed_dim=12,
            time_embed_dim=8,
            condition_dim=4,
            prior_vq_quantizer_codebook_size=32,
        )
        _unzero(model)
        caches = GlmImageKVCache(num_layers=4)
        caches.set_mode("write")  # the pipeline's pass over one condition image
        with torch.no_grad():
            model(
                hidden_states=torch.randn(1, 4, 8, 8),
                encoder_hidden_states=torch.zeros(1, 0, 12),
                prior_token_id=torch.randint(0, 32, (1, 16)),
                prior_token_drop=torch.zeros(1, 16, dtype=torch.bool),
                timestep=torch.zeros(1),
                target_size=torch.tensor([[64.0, 64.0]]),
                crop_coords=torch.zeros(1, 2),
                kv_caches=caches,
            )
        caches.next_sample()
        caches.set_mode("read")
        return model, dict(
            hidden_states=torch.randn(1, 4, 8, 8),
            encoder_hidden_states=torch.randn(1, 6, 12),
            prior_token_id=torch.randint(0, 32, (1, 16)),
            prior_token_drop=torch.zeros(1, 16, dtype=torch.bool),
            timestep=torch.tensor([999.0]),
            target_size=torch.tensor([[64.0, 64.0]]),
            crop_coords=torch.zeros(1, 2),
            kv_caches=caches,
        )

    return _build(seed, make)


def bria_fibo(seed: int) -> Case:
    from diffusers import BriaFiboTransformer2DModel

    def make() -> Case:
        model = BriaFiboTransformer2DModel(
            patch_size=1,
            in_channels=8,
            num_layers=2,
            num_single_layers=4,
            attention_head_dim=8,
            num_attention_heads=2,
            joint_attention_dim=16,
            axes_dims_rope=[2, 2, 4],
            text_encoder_dim=12,
        )
        kwargs = _flux_like_inputs(8, 16)
        kwargs["text_encoder_layers"] = [torch.randn(1, 6, 12) for _ in range(6)]
        return model, kwargs

    return _build(seed, make)


def bria_fibo2(seed: int) -> Case:
    from diffusers import BriaFibo2Transformer2DModel

    def make() -> Case:
        model = BriaFibo2Transformer2DModel(
            in_channels=4,
            patch_size=2,
            dim=64,  # the feed-forward width rounds down to a multiple of 64
            n_layers=4,
            n_refiner_layers=1,
            n_heads=2,
            cap_feat_dim=12,
            injection_layer_ids=(1, 3),
            perceiver_num_layers=1,
            min_num_gist_tokens=2,
            max_num_gist_tokens=4,
            gist_step=2,
            gist_min_text_len=2,
            gist_max_text_len=8,
            axes_dims=(8, 12, 12),
            axes_lens=(64, 16, 16),
        )
        _unzero(model)
        with torch.no_grad():
            for layer in model.layers:
                if layer.cross_attention is not None:
                    layer.cross_attn_gate.fill_(0.5)
        return model, dict(
            hidden_states=torch.randn(1, 4, 8, 8),
            timestep=torch.tensor([0.999]),
            encoder_hidden_states=torch.randn(1, 3, 6, 12),
        )

    return _build(seed, make)


def qwen_image21(seed: int) -> Case:
    from diffusers import QwenImage21Transformer2DModel

    def make() -> Case:
        model = QwenImage21Transformer2DModel(
            patch_size=1,
            in_channels=8,
            out_channels=8,
            num_layers=4,
            attention_head_dim=8,
            num_attention_heads=2,
            context_in_dim=12,
            mlp_ratio=2,
            axes_dims_rope=(2, 2, 4),
        )
        _unzero(model)
        text = 6
        img_mask = torch.cat(
            [torch.zeros(1, text, dtype=torch.bool), torch.ones(1, 4, dtype=torch.bool)], 1
        )
        return model, dict(
            hidden_states=torch.randn(1, 16, 8),
            encoder_hidden_states=torch.randn(1, text, 12),
            timestep=torch.tensor([0.999]),
            img_shapes=[[(1, 4, 4)]],
            img_mask=img_mask,
        )

    return _build(seed, make)
