"""Tiny video and audio transformers of the families whose forward needs a patch functor.

Builders as in :mod:`.video`. The inputs exercise what the functor moves into the blocks: VACE
control hints, Wan-Animate's face adapter, Latte's temporal blocks, ACE-Step's sliding-window
masks, LTX-2's audio stream, Cosmos 3's understanding stream and Motif-Video's guards.
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
    _video,
    _wan_like,
)


@_seeded
def motif_video():
    from diffusers import MotifVideoTransformer3DModel

    model = MotifVideoTransformer3DModel(
        in_channels=4,
        out_channels=4,
        num_attention_heads=HEADS,
        attention_head_dim=HEAD_DIM,
        num_layers=2,
        num_single_layers=2,
        text_embed_dim=TEXT_DIM,
        rope_axes_dim=(2, 2, 4),
    )
    kwargs = dict(
        hidden_states=_video(),
        timestep=_timestep(),
        encoder_hidden_states=_text(),
        encoder_attention_mask=torch.ones(1, TEXT_LEN),
    )
    return model, kwargs


@_seeded
def ace_step():
    """Interleaved sliding-window and full-attention layers (a window shorter than the clip)."""
    from diffusers import AceStepTransformer1DModel

    model = AceStepTransformer1DModel(
        hidden_size=HEADS * HEAD_DIM,
        intermediate_size=32,
        num_hidden_layers=4,
        num_attention_heads=HEADS,
        num_key_value_heads=1,
        head_dim=HEAD_DIM,
        in_channels=8,
        audio_acoustic_hidden_dim=4,
        sliding_window=2,
        encoder_hidden_size=TEXT_DIM,
    )
    kwargs = dict(
        hidden_states=torch.randn(1, 16, 4),
        timestep=torch.tensor([0.9]),
        timestep_r=torch.tensor([0.9]),
        encoder_hidden_states=_text(),
        context_latents=torch.randn(1, 16, 4),
    )
    return model, kwargs


@_seeded
def wan_vace():
    """Control hints after blocks 0 and 2, with different scales."""
    model, kwargs = _wan_like(
        "WanVACETransformer3DModel", rope_max_seq_len=32, vace_layers=[0, 2], vace_in_channels=8
    )
    kwargs["control_hidden_states"] = torch.randn(1, 8, 2, 8, 8)
    kwargs["control_hidden_states_scale"] = torch.tensor([1.0, 0.5])
    return model, kwargs


@_seeded
def wan_animate():
    """A face adapter after blocks 0 and 2; a 16x16 face crop for the motion encoder."""
    from diffusers import WanAnimateTransformer3DModel

    model = WanAnimateTransformer3DModel(
        num_attention_heads=HEADS,
        attention_head_dim=HEAD_DIM,
        in_channels=12,
        latent_channels=4,
        out_channels=4,
        text_dim=TEXT_DIM,
        freq_dim=16,
        ffn_dim=32,
        num_layers=4,
        image_dim=None,
        rope_max_seq_len=32,
        motion_encoder_channel_sizes={"16": 4, "8": 4, "4": 4},
        motion_encoder_size=16,
        motion_style_dim=16,
        motion_dim=4,
        motion_encoder_dim=16,
        face_encoder_hidden_dim=16,
        face_encoder_num_heads=2,
        inject_face_latents_blocks=2,
    )
    kwargs = dict(
        hidden_states=_video(channels=12),
        timestep=_timestep(),
        encoder_hidden_states=_text(),
        pose_hidden_states=_video(frames=1),
        face_pixel_values=torch.randn(1, 3, 1, 16, 16),
    )
    return model, kwargs


@_seeded
def ltx2():
    """Video tokens (2 frames of 4x4) and 5 audio tokens, each with its own text stream."""
    from diffusers import LTX2VideoTransformer3DModel

    model = LTX2VideoTransformer3DModel(
        in_channels=8,
        out_channels=8,
        num_attention_heads=HEADS,
        attention_head_dim=HEAD_DIM,
        cross_attention_dim=HEADS * HEAD_DIM,
        audio_in_channels=4,
        audio_out_channels=4,
        audio_num_attention_heads=HEADS,
        audio_attention_head_dim=4,
        audio_cross_attention_dim=8,
        num_layers=4,
        caption_channels=TEXT_DIM,
        use_prompt_adaln_single=False,
        perturbed_attn=True,  # spatio-temporal guidance perturbs the self-attention (LTX-2.3)
    )
    kwargs = dict(
        hidden_states=torch.randn(1, 2 * 4 * 4, 8),
        audio_hidden_states=torch.randn(1, 5, 4),
        encoder_hidden_states=_text(),
        audio_encoder_hidden_states=_text(),
        timestep=_timestep(),
        num_frames=2,
        height=4,
        width=4,
        audio_num_frames=5,
    )
    return model, kwargs


@_seeded
def latte():
    """Spatial and temporal blocks alternate; 2 frames (the temporal position embedding's
    length)."""
    from diffusers import LatteTransformer3DModel

    model = LatteTransformer3DModel(
        num_attention_heads=HEADS,
        attention_head_dim=HEAD_DIM,
        in_channels=4,
        out_channels=8,
        num_layers=4,
        cross_attention_dim=HEADS * HEAD_DIM,
        sample_size=8,
        patch_size=2,
        norm_type="ada_norm_single",
        num_embeds_ada_norm=1000,
        caption_channels=TEXT_DIM,
        video_length=2,
    )
    kwargs = dict(hidden_states=_video(), timestep=_timestep(), encoder_hidden_states=_text())
    return model, kwargs


@_seeded
def cosmos3():
    """A packed sequence: 4 text tokens (the understanding stream), then the 2x2 patches of one
    noisy latent frame (the generation stream); the timestep is per noisy token
    (``vision_timesteps``) and the sample is a list of latents."""
    from diffusers import Cosmos3OmniTransformer

    model = Cosmos3OmniTransformer(
        head_dim=HEAD_DIM,
        hidden_size=HEADS * HEAD_DIM,
        intermediate_size=32,
        latent_channel=4,
        latent_patch_size=2,
        num_attention_heads=HEADS,
        num_hidden_layers=4,
        num_key_value_heads=1,
        patch_latent_dim=16,
        vocab_size=32,
        rope_axes_dim=[2, 1, 1],
    )
    text, vision = 4, 4
    kwargs = dict(
        input_ids=torch.randint(0, 32, (text,)),
        text_indexes=torch.arange(text),
        position_ids=torch.arange(text + vision).repeat(3, 1),
        und_len=text,
        sequence_length=text + vision,
        vision_tokens=[torch.randn(1, 4, 1, 4, 4)],
        vision_token_shapes=[(1, 2, 2)],
        vision_sequence_indexes=torch.arange(text, text + vision),
        vision_mse_loss_indexes=torch.arange(text, text + vision),
        vision_timesteps=torch.full((vision,), 999.0),
        vision_noisy_frame_indexes=[torch.tensor([0])],
    )
    return model, kwargs
