"""Tiny video, audio and audio-video transformers of the newer diffusers families.

Sana-Video, Sana-WM, Stable Audio 3, Kandinsky 6, MiniMax H3 and Music 3, JoyImage: their blocks
fit a forward pattern as they are. Builders as in :mod:`.video` (``@_seeded`` ``make()``
functions: a random tiny transformer and the keyword arguments of one forward call, fixed by the
seed); Kandinsky 6's zero-initialised modulations get small random values.
"""

from __future__ import annotations

import torch

from ._common import (
    HEAD_DIM,
    HEADS,
    TEXT_DIM,
    TEXT_LEN,
    _seeded,
    _text,
    _timestep,
    _unzero,
    _video,
)


@_seeded
def sana_video():
    from diffusers import SanaVideoTransformer3DModel

    model = SanaVideoTransformer3DModel(
        in_channels=4,
        out_channels=4,
        num_attention_heads=HEADS,
        attention_head_dim=HEAD_DIM,
        num_layers=4,
        num_cross_attention_heads=HEADS,
        cross_attention_head_dim=HEAD_DIM,
        cross_attention_dim=HEADS * HEAD_DIM,
        caption_channels=TEXT_DIM,
        sample_size=8,
        rope_max_seq_len=32,
    )
    kwargs = dict(hidden_states=_video(), encoder_hidden_states=_text(), timestep=_timestep())
    return model, kwargs


@_seeded
def sana_wm():
    """One timestep per latent frame, shaped (batch, 1, frames); the text padding mask is
    required."""
    from diffusers import SanaWMTransformer3DModel

    model = SanaWMTransformer3DModel(
        in_channels=4,
        num_layers=4,
        hidden_size=HEADS * HEAD_DIM,
        num_attention_heads=HEADS,
        linear_head_dim=HEAD_DIM,
        softmax_every_n=2,
        caption_channels=TEXT_DIM,
        image_size=64,
        use_chunk_plucker_post_attn=False,
        chunk_plucker_post_attn_blocks=0,
        fp32_attention=False,
        mixed_precision="fp32",
    )
    kwargs = dict(
        hidden_states=_video(),
        timestep=torch.full((1, 1, 2), 999.0),
        encoder_hidden_states=_text()[:, None],
        encoder_attention_mask=torch.ones(1, TEXT_LEN),
    )
    return model, kwargs


@_seeded
def stable_audio3():
    from diffusers import StableAudio3DiTModel

    model = StableAudio3DiTModel(
        io_channels=4,
        embed_dim=HEADS * HEAD_DIM,
        depth=4,
        num_heads=HEADS,
        cond_token_dim=TEXT_DIM,
        global_cond_dim=TEXT_DIM,
        local_add_cond_dim=4,
        timestep_features_dim=16,
        num_memory_tokens=2,
    )
    kwargs = dict(
        hidden_states=torch.randn(1, 4, 16),
        timestep=torch.tensor([0.9]),
        encoder_hidden_states=_text(),
        global_hidden_states=torch.randn(1, TEXT_DIM),
    )
    return model, kwargs


@_seeded
def kandinsky6():
    """Video and audio streams through the fused blocks (channels-last video latents)."""
    from diffusers import Kandinsky6Transformer3DModel

    model = Kandinsky6Transformer3DModel(
        in_visual_dim=4,
        out_visual_dim=4,
        in_text_dim=TEXT_DIM,
        in_text_dim2=8,
        time_dim=16,
        model_dim=HEADS * HEAD_DIM,
        ff_dim=32,
        num_text_blocks=1,
        num_visual_blocks=4,
        axes_dims=(2, 2, 4),
        visual_cond=False,
        in_audio_dim=4,
        out_audio_dim=4,
    )
    _unzero(model)
    kwargs = dict(
        hidden_states=_video().permute(0, 2, 3, 4, 1),
        encoder_hidden_states=_text(),
        pooled_projections=torch.randn(1, 8),
        timestep=_timestep(),
        audio_hidden_states=torch.randn(1, 8, 4),
    )
    return model, kwargs


@_seeded
def kandinsky6_sr():
    """Channels-last tiles of the noisy latent, the anchor and its mask (2 * 4 + 1 channels);
    the token grid is one 8x8 NABLA block."""
    from diffusers import Kandinsky6SRTransformer3DModel

    model = Kandinsky6SRTransformer3DModel(
        in_visual_dim=4,
        out_visual_dim=4,
        time_dim=16,
        model_dim=HEADS * HEAD_DIM,
        ff_dim=32,
        num_visual_blocks=4,
        axes_dims=(2, 2, 4),
        nabla_window=(3, 3, 3),
    )
    _unzero(model)
    kwargs = dict(hidden_states=torch.randn(1, 1, 8, 8, 9), timestep=_timestep())
    return model, kwargs


@_seeded
def minimax_h3():
    """One packed sequence of text, video and audio rows (all at the same timestep)."""
    from diffusers import MiniMaxH3Transformer3DModel

    model = MiniMaxH3Transformer3DModel(
        num_attention_heads=HEADS,
        attention_head_dim=HEAD_DIM,
        hidden_size=HEADS * HEAD_DIM,
        num_layers=4,
        num_refiner_layers=1,
        ffn_dim=32,
        in_channels=4,
        audio_in_channels=4,
        text_dim=TEXT_DIM,
        freq_dim=16,
        time_embed_hidden_dim=16,
        time_embed_dim=8,
        rope_freq_dim=1,
    )
    video, audio = 8, 4
    length = TEXT_LEN + video + audio
    kwargs = dict(
        hidden_states=torch.randn(1, video, 16),
        audio_hidden_states=torch.randn(1, audio, 4),
        encoder_hidden_states=_text(),
        timestep=torch.tensor([0.9]),
        timestep_indices=torch.zeros(length, dtype=torch.long),
        token_tags=torch.tensor([1] * TEXT_LEN + [0] * video + [2] * audio),
        position_ids=torch.arange(length)[:, None].repeat(1, 3),
        video_indices=torch.arange(TEXT_LEN, TEXT_LEN + video),
        audio_indices=torch.arange(TEXT_LEN + video, length),
        text_indices=torch.arange(TEXT_LEN),
    )
    return model, kwargs


@_seeded
def minimax_music3():
    from diffusers import MiniMaxMusic3Transformer1DModel

    model = MiniMaxMusic3Transformer1DModel(
        in_channels=4,
        condition_dim=TEXT_DIM,
        num_layers=4,
        num_attention_heads=HEADS,
        attention_head_dim=HEAD_DIM,
        ff_inner_dim=32,
        rotary_dim=4,
        fourier_embedding_dim=16,
    )
    kwargs = dict(
        hidden_states=torch.randn(1, 4, 16),
        timestep=torch.tensor([0.1]),
        encoder_hidden_states=torch.randn(1, 16, TEXT_DIM),
    )
    return model, kwargs


@_seeded
def joyimage_edit():
    from diffusers import JoyImageEditTransformer3DModel

    model = JoyImageEditTransformer3DModel(
        in_channels=4,
        hidden_size=HEADS * HEAD_DIM,
        num_attention_heads=HEADS,
        text_dim=TEXT_DIM,
        num_layers=4,
        rope_dim_list=[2, 2, 4],
    )
    kwargs = dict(
        hidden_states=_video(frames=1), timestep=_timestep(), encoder_hidden_states=_text()
    )
    return model, kwargs


@_seeded
def joyimage_edit_plus():
    """Pre-patchified inputs (batch, patches, C, 1, 2, 2) with one (t, h, w) shape per item."""
    from diffusers import JoyImageEditPlusTransformer3DModel

    model = JoyImageEditPlusTransformer3DModel(
        in_channels=4,
        hidden_size=HEADS * HEAD_DIM,
        num_attention_heads=HEADS,
        text_dim=TEXT_DIM,
        num_layers=4,
        rope_dim_list=[2, 2, 4],
    )
    kwargs = dict(
        hidden_states=torch.randn(1, 16, 4, 1, 2, 2),
        timestep=_timestep(),
        encoder_hidden_states=_text(),
        encoder_hidden_states_mask=torch.ones(1, TEXT_LEN),
        shape_list=[[(1, 4, 4)]],
    )
    return model, kwargs
