"""Tiny video transformers: name -> builder of (transformer, forward kwargs).

Each builder makes a randomly initialised diffusers transformer (2 heads, a few blocks, 1-2
latent frames) and the keyword arguments of one forward call, both fixed by ``seed``. The
``timestep`` entry is a 1-element tensor the caller replaces step by step. This module holds
the families of cache-dit 1.5.3's video prefixes (HunyuanVideo, LTX, CogVideoX, Wan-like, ...)
and :data:`VIDEO_CASES`; :mod:`.video_recent` the classes diffusers added since, and
:mod:`.video_functors` the families whose forward needs a patch functor.
"""

from __future__ import annotations

import torch

from ._common import (
    HEAD_DIM,
    HEADS,
    TEXT_DIM,
    TEXT_LEN,
    Builder,
    _seeded,
    _text,
    _timestep,
    _video,
    _wan_like,
)
from .video_functors import ace_step, cosmos3, latte, ltx2, motif_video, wan_animate, wan_vace
from .video_recent import (
    joyimage_edit,
    joyimage_edit_plus,
    kandinsky6,
    kandinsky6_sr,
    minimax_h3,
    minimax_music3,
    sana_video,
    sana_wm,
    stable_audio3,
)

__all__ = ["VIDEO_CASES"]


@_seeded
def hunyuan_video():
    from diffusers import HunyuanVideoTransformer3DModel

    model = HunyuanVideoTransformer3DModel(
        in_channels=4,
        out_channels=4,
        num_attention_heads=HEADS,
        attention_head_dim=HEAD_DIM,
        num_layers=2,
        num_single_layers=2,
        num_refiner_layers=1,
        text_embed_dim=TEXT_DIM,
        pooled_projection_dim=8,
        rope_axes_dim=(2, 2, 4),
    )
    kwargs = dict(
        hidden_states=_video(),
        timestep=_timestep(),
        encoder_hidden_states=_text(),
        encoder_attention_mask=torch.ones(1, TEXT_LEN),
        pooled_projections=torch.randn(1, 8),
        guidance=torch.tensor([3500.0]),
    )
    return model, kwargs


@_seeded
def ltx_video():
    from diffusers import LTXVideoTransformer3DModel

    model = LTXVideoTransformer3DModel(
        in_channels=8,
        out_channels=8,
        num_attention_heads=HEADS,
        attention_head_dim=HEAD_DIM,
        cross_attention_dim=HEADS * HEAD_DIM,
        num_layers=4,
        caption_channels=TEXT_DIM,
    )
    kwargs = dict(
        hidden_states=torch.randn(1, 2 * 4 * 4, 8),
        encoder_hidden_states=_text(),
        timestep=_timestep(),
        encoder_attention_mask=torch.ones(1, TEXT_LEN),
        num_frames=2,
        height=4,
        width=4,
    )
    return model, kwargs


@_seeded
def cogvideox():
    from diffusers import CogVideoXTransformer3DModel

    model = CogVideoXTransformer3DModel(
        num_attention_heads=HEADS,
        attention_head_dim=HEAD_DIM,
        in_channels=4,
        out_channels=4,
        time_embed_dim=8,
        text_embed_dim=TEXT_DIM,
        num_layers=4,
        sample_width=8,
        sample_height=8,
        sample_frames=5,
        max_text_seq_length=TEXT_LEN,
    )
    kwargs = dict(
        hidden_states=torch.randn(1, 2, 4, 8, 8),
        encoder_hidden_states=_text(),
        timestep=_timestep(),
    )
    return model, kwargs


@_seeded
def consisid():
    from diffusers import ConsisIDTransformer3DModel

    model = ConsisIDTransformer3DModel(
        num_attention_heads=HEADS,
        attention_head_dim=HEAD_DIM,
        in_channels=4,
        out_channels=4,
        time_embed_dim=8,
        text_embed_dim=TEXT_DIM,
        num_layers=4,
        sample_width=8,
        sample_height=8,
        sample_frames=5,
        max_text_seq_length=TEXT_LEN,
    )
    kwargs = dict(
        hidden_states=torch.randn(1, 2, 4, 8, 8),
        encoder_hidden_states=_text(),
        timestep=_timestep(),
    )
    return model, kwargs


@_seeded
def mochi():
    from diffusers import MochiTransformer3DModel

    model = MochiTransformer3DModel(
        num_attention_heads=HEADS,
        attention_head_dim=HEAD_DIM,
        num_layers=4,
        pooled_projection_dim=8,
        in_channels=4,
        text_embed_dim=TEXT_DIM,
        time_embed_dim=8,
        max_sequence_length=TEXT_LEN,
    )
    kwargs = dict(
        hidden_states=_video(),
        encoder_hidden_states=_text(),
        timestep=_timestep(),
        encoder_attention_mask=torch.ones(1, TEXT_LEN),
    )
    return model, kwargs


@_seeded
def allegro():
    from diffusers import AllegroTransformer3DModel

    model = AllegroTransformer3DModel(
        num_attention_heads=HEADS,
        attention_head_dim=HEAD_DIM,
        in_channels=4,
        out_channels=4,
        num_layers=4,
        cross_attention_dim=HEADS * HEAD_DIM,
        sample_height=8,
        sample_width=8,
        sample_frames=2,
        caption_channels=TEXT_DIM,
    )
    kwargs = dict(
        hidden_states=_video(),
        encoder_hidden_states=_text(),
        timestep=_timestep(),
    )
    return model, kwargs


@_seeded
def easyanimate():
    from diffusers import EasyAnimateTransformer3DModel

    model = EasyAnimateTransformer3DModel(
        num_attention_heads=HEADS,
        attention_head_dim=16,
        in_channels=4,
        out_channels=4,
        patch_size=2,
        sample_width=8,
        sample_height=8,
        num_layers=4,
        mmdit_layers=4,
        time_embed_dim=32,
        text_embed_dim=TEXT_DIM,
    )
    kwargs = dict(
        hidden_states=_video(),
        timestep=_timestep(),
        encoder_hidden_states=_text(),
    )
    return model, kwargs


@_seeded
def skyreels_v2():
    return _wan_like("SkyReelsV2Transformer3DModel", rope_max_seq_len=32)


@_seeded
def chronoedit():
    return _wan_like("ChronoEditTransformer3DModel", rope_max_seq_len=32)


@_seeded
def cosmos():
    from diffusers import CosmosTransformer3DModel

    model = CosmosTransformer3DModel(
        in_channels=4,
        out_channels=4,
        num_attention_heads=HEADS,
        attention_head_dim=16,
        num_layers=4,
        text_embed_dim=TEXT_DIM,
        adaln_lora_dim=8,
        max_size=(4, 16, 16),
        patch_size=(1, 2, 2),
        encoder_hidden_states_channels=TEXT_DIM,
        crossattn_proj_in_channels=TEXT_DIM,
        concat_padding_mask=False,  # the padding mask needs torchvision
    )
    kwargs = dict(
        hidden_states=_video(),
        timestep=_timestep() / 1000,
        encoder_hidden_states=_text(),
    )
    return model, kwargs


@_seeded
def stable_audio():
    from diffusers import StableAudioDiTModel
    from diffusers.models.embeddings import get_1d_rotary_pos_embed

    model = StableAudioDiTModel(
        sample_size=16,
        in_channels=4,
        num_layers=4,
        attention_head_dim=HEAD_DIM,
        num_attention_heads=HEADS,
        num_key_value_attention_heads=1,
        out_channels=4,
        cross_attention_dim=TEXT_DIM,
        time_proj_dim=16,
        global_states_input_dim=TEXT_DIM,
        cross_attention_input_dim=TEXT_DIM,
    )
    rotary = get_1d_rotary_pos_embed(
        HEAD_DIM // 2, 16 + 1, use_real=True, repeat_interleave_real=False
    )
    kwargs = dict(
        hidden_states=torch.randn(1, 4, 16),
        timestep=_timestep(),
        encoder_hidden_states=_text(),
        global_hidden_states=torch.randn(1, 1, TEXT_DIM),
        rotary_embedding=rotary,
    )
    return model, kwargs


@_seeded
def hunyuan_video15():
    from diffusers import HunyuanVideo15Transformer3DModel

    model = HunyuanVideo15Transformer3DModel(
        in_channels=4,
        out_channels=4,
        num_attention_heads=HEADS,
        attention_head_dim=HEAD_DIM,
        num_layers=4,
        num_refiner_layers=1,
        text_embed_dim=TEXT_DIM,
        text_embed_2_dim=8,
        image_embed_dim=8,
        rope_axes_dim=(2, 2, 4),
    )
    kwargs = dict(
        hidden_states=_video(),
        timestep=_timestep(),
        encoder_hidden_states=_text(),
        encoder_attention_mask=torch.ones(1, TEXT_LEN),
        encoder_hidden_states_2=torch.randn(1, 4, 8),
        encoder_attention_mask_2=torch.ones(1, 4),
        image_embeds=torch.randn(1, 4, 8),
    )
    return model, kwargs


@_seeded
def helios():
    return _wan_like(
        "HeliosTransformer3DModel",
        rope_dim=(2, 2, 4),
        has_multi_term_memory_patch=False,
    )


@_seeded
def anyflow():
    model, kwargs = _wan_like("AnyFlowTransformer3DModel", rope_max_seq_len=32)
    kwargs["hidden_states"] = kwargs["hidden_states"].transpose(1, 2)  # (batch, frames, C, H, W)
    kwargs["timestep"] = torch.full((1, 2), 999.0)  # one per latent frame
    kwargs["r_timestep"] = torch.full((1, 2), 500.0)
    return model, kwargs


@_seeded
def kandinsky5():
    """Channels-last latents (batch, frames, H, W, C); its modulations start at zero, so they get
    small random weights here (otherwise every block is the identity)."""
    from diffusers import Kandinsky5Transformer3DModel

    model = Kandinsky5Transformer3DModel(
        in_visual_dim=4,
        in_text_dim=TEXT_DIM,
        in_text_dim2=8,
        time_dim=16,
        out_visual_dim=4,
        patch_size=(1, 2, 2),
        model_dim=HEADS * HEAD_DIM,
        ff_dim=32,
        num_text_blocks=1,
        num_visual_blocks=4,
        axes_dims=(2, 2, 4),  # head_dim = sum(axes_dims) = HEAD_DIM
    )
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.numel() > 1 and not parameter.any():
                parameter.normal_(0.0, 0.2)
    kwargs = dict(
        hidden_states=_video().permute(0, 2, 3, 4, 1),
        encoder_hidden_states=_text(),
        timestep=_timestep(),
        pooled_projections=torch.randn(1, 8),
        visual_rope_pos=[torch.arange(2), torch.arange(4), torch.arange(4)],
        text_rope_pos=torch.arange(TEXT_LEN),
    )
    return model, kwargs


@_seeded
def hunyuan_video_framepack():
    """Packed history latents (clean, 2x and 4x downsampled) before the noisy frame."""
    from diffusers import HunyuanVideoFramepackTransformer3DModel

    model = HunyuanVideoFramepackTransformer3DModel(
        in_channels=4,
        out_channels=4,
        num_attention_heads=HEADS,
        attention_head_dim=HEAD_DIM,
        num_layers=2,
        num_single_layers=2,
        num_refiner_layers=1,
        text_embed_dim=TEXT_DIM,
        pooled_projection_dim=8,
        rope_axes_dim=(2, 2, 4),
        has_image_proj=True,
        image_proj_dim=8,
        has_clean_x_embedder=True,
    )
    kwargs = dict(
        hidden_states=_video(frames=1),
        timestep=_timestep(),
        encoder_hidden_states=_text(),
        encoder_attention_mask=torch.ones(1, TEXT_LEN),
        pooled_projections=torch.randn(1, 8),
        image_embeds=torch.randn(1, 4, 8),
        indices_latents=torch.tensor([3]),
        guidance=torch.tensor([3500.0]),
        latents_clean=_video(),
        indices_latents_clean=torch.tensor([0, 4]),
        latents_history_2x=_video(),
        indices_latents_history_2x=torch.tensor([1, 2]),
        latents_history_4x=_video(frames=4),
        indices_latents_history_4x=torch.tensor([5, 6, 7, 8]),
    )
    return model, kwargs


VIDEO_CASES: dict[str, Builder] = {
    "hunyuan_video": hunyuan_video,
    "ltx_video": ltx_video,
    "cogvideox": cogvideox,
    "consisid": consisid,
    "mochi": mochi,
    "allegro": allegro,
    "easyanimate": easyanimate,
    "skyreels_v2": skyreels_v2,
    "chronoedit": chronoedit,
    "cosmos": cosmos,
    "stable_audio": stable_audio,
    "hunyuan_video15": hunyuan_video15,
    "helios": helios,
    "anyflow": anyflow,
    "kandinsky5": kandinsky5,
    "hunyuan_video_framepack": hunyuan_video_framepack,
    "sana_video": sana_video,
    "sana_wm": sana_wm,
    "stable_audio3": stable_audio3,
    "kandinsky6": kandinsky6,
    "kandinsky6_sr": kandinsky6_sr,
    "motif_video": motif_video,
    "minimax_h3": minimax_h3,
    "minimax_music3": minimax_music3,
    "joyimage_edit": joyimage_edit,
    "joyimage_edit_plus": joyimage_edit_plus,
    "ace_step": ace_step,
    "wan_vace": wan_vace,
    "wan_animate": wan_animate,
    "ltx2": ltx2,
    "latte": latte,
    "cosmos3": cosmos3,
}
