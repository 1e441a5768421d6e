"""The ImageReward v1.0 network in plain torch: BLIP ViT-L/16, BERT "med" with cross-attention, MLP.

ImageReward (Xu et al., 2023) scores how well an image matches a prompt and how much people
like it. Its network is the image-text matching half of BLIP:

- ``blip.visual_encoder``: a ViT (timm layout) with a class token, learned position embeddings,
  pre-norm blocks (fused ``qkv`` linear, GELU MLP) and a final LayerNorm (eps 1e-6);
- ``blip.text_encoder``: BLIP's "med" BERT (post-norm, eps 1e-12, no token-type embeddings, no
  pooler) whose every layer runs self-attention over the prompt, then cross-attention from the
  prompt to the image tokens, then the feed-forward block;
- ``mlp``: five linear layers with no activation between them (dropouts sit at indices 1, 3
  and 5, so the linears are ``layers.0/2/4/6/7``), applied to the text class token;
- the score normalisation ``(raw - 0.16717...) / 1.03333...``.

``blip.vision_proj`` and ``blip.text_proj`` are unused by the score but belong to the published
checkpoint, so they are kept for a strict load. Attribute names reproduce the checkpoint's
state-dict keys exactly (see ``manifests/image_reward_v1.json``).

Example:
    >>> import torch
    >>> cfg = ImageRewardConfig.tiny()
    >>> model = ImageRewardModel(cfg).eval()
    >>> ids = torch.tensor([[2, 5, 3, 0]])
    >>> model(torch.zeros(1, 3, cfg.image_size, cfg.image_size), ids, ids.ne(0).long()).shape
    torch.Size([1])
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional

__all__ = ["REWARD_MEAN", "REWARD_STD", "ImageRewardConfig", "ImageRewardModel"]

#: Mean and standard deviation of the raw MLP output over ImageReward's training data; the
#: published score is ``(raw - REWARD_MEAN) / REWARD_STD``.
REWARD_MEAN = 0.16717362830052426
REWARD_STD = 1.0333394966054072


@dataclass(frozen=True)
class ImageRewardConfig:
    """Every size of the network; the defaults are the published ImageReward v1.0 ones.

    The vision side is BLIP's ViT-L/16 at 224 px; the text side is BLIP's ``med_config.json``
    (bert-base sizes, vocabulary 30522 + ``[DEC]`` + ``[ENC]``) with ``encoder_width`` equal to
    the vision width.
    """

    image_size: int = 224
    patch_size: int = 16
    vision_width: int = 1024
    vision_layers: int = 24
    vision_heads: int = 16
    vision_mlp_ratio: float = 4.0
    vision_eps: float = 1e-6
    vocab_size: int = 30524
    text_width: int = 768
    text_layers: int = 12
    text_heads: int = 12
    text_intermediate: int = 3072
    max_positions: int = 512
    text_eps: float = 1e-12
    proj_dim: int = 256
    head_sizes: tuple[int, ...] = (1024, 128, 64, 16)
    reward_mean: float = REWARD_MEAN
    reward_std: float = REWARD_STD

    def __post_init__(self) -> None:
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size={self.image_size} is not a multiple of patch_size")
        if self.vision_width % self.vision_heads or self.text_width % self.text_heads:
            raise ValueError("vision_width/text_width must be multiples of their head counts")
        if len(self.head_sizes) != 4:
            raise ValueError(f"head_sizes={self.head_sizes} must hold the 4 hidden MLP widths")
        if self.reward_std <= 0:
            raise ValueError(f"reward_std={self.reward_std} must be > 0")
        object.__setattr__(self, "head_sizes", tuple(int(s) for s in self.head_sizes))

    @classmethod
    def from_dict(cls, values: dict) -> ImageRewardConfig:
        """Builds a config from a mapping, refusing unknown keys (a typo would be silent)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown ImageReward config keys {unknown}; known: {sorted(known)}")
        return cls(**values)

    @classmethod
    def tiny(cls, vocab_size: int = 16) -> ImageRewardConfig:
        """A few-kilobyte network of the same code path, for tests."""
        return cls(
            image_size=32,
            patch_size=16,
            vision_width=32,
            vision_layers=2,
            vision_heads=2,
            vocab_size=vocab_size,
            text_width=32,
            text_layers=2,
            text_heads=2,
            text_intermediate=64,
            max_positions=40,
            proj_dim=8,
            head_sizes=(24, 16, 8, 4),
        )


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, bias=None):
    """Multi-head scaled dot-product attention on ``[B, L, C]`` inputs."""
    b, lq, c = q.shape
    lk = k.shape[1]
    q = q.view(b, lq, heads, c // heads).transpose(1, 2)
    k = k.view(b, lk, heads, c // heads).transpose(1, 2)
    v = v.view(b, lk, heads, c // heads).transpose(1, 2)
    out = functional.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    return out.transpose(1, 2).reshape(b, lq, c)


# --- vision: BLIP's ViT (timm key layout) -------------------------------------------------


class _PatchEmbed(nn.Module):
    def __init__(self, cfg: ImageRewardConfig) -> None:
        super().__init__()
        p = cfg.patch_size
        self.proj = nn.Conv2d(3, cfg.vision_width, kernel_size=p, stride=p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class _VitAttention(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        return self.proj(_attend(q, k, v, self.heads))


class _VitMlp(nn.Module):
    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, hidden)
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(functional.gelu(self.fc1(x)))


class _VitBlock(nn.Module):
    def __init__(self, cfg: ImageRewardConfig) -> None:
        super().__init__()
        w = cfg.vision_width
        self.norm1 = nn.LayerNorm(w, eps=cfg.vision_eps)
        self.attn = _VitAttention(w, cfg.vision_heads)
        self.norm2 = nn.LayerNorm(w, eps=cfg.vision_eps)
        self.mlp = _VitMlp(w, int(w * cfg.vision_mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class BlipVisionTransformer(nn.Module):
    """BLIP's ViT: ``[N, 3, S, S]`` normalised pixels -> ``[N, 1 + (S/P)^2, width]`` tokens."""

    def __init__(self, cfg: ImageRewardConfig) -> None:
        super().__init__()
        tokens = (cfg.image_size // cfg.patch_size) ** 2 + 1
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.vision_width))
        self.pos_embed = nn.Parameter(torch.zeros(1, tokens, cfg.vision_width))
        self.patch_embed = _PatchEmbed(cfg)
        self.blocks = nn.ModuleList(_VitBlock(cfg) for _ in range(cfg.vision_layers))
        self.norm = nn.LayerNorm(cfg.vision_width, eps=cfg.vision_eps)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(pixels)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = x + self.pos_embed[:, : x.shape[1]]
        for block in self.blocks:
            x = block(x)
        return self.norm(x)


# --- text: BLIP's "med" BERT with cross-attention (HF BERT key layout) -----------------------


class _BertEmbeddings(nn.Module):
    def __init__(self, cfg: ImageRewardConfig) -> None:
        super().__init__()
        self.register_buffer("position_ids", torch.arange(cfg.max_positions).expand(1, -1))
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.text_width, padding_idx=0)
        self.position_embeddings = nn.Embedding(cfg.max_positions, cfg.text_width)
        self.LayerNorm = nn.LayerNorm(cfg.text_width, eps=cfg.text_eps)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        positions = self.position_ids[:, : input_ids.shape[1]]
        x = self.word_embeddings(input_ids) + self.position_embeddings(positions)
        return self.LayerNorm(x)


class _BertSelf(nn.Module):
    """Query/key/value projections; keys and values read ``kv_width`` features."""

    def __init__(self, width: int, kv_width: int) -> None:
        super().__init__()
        self.query = nn.Linear(width, width)
        self.key = nn.Linear(kv_width, width)
        self.value = nn.Linear(kv_width, width)


class _BertProjectNorm(nn.Module):
    """``LayerNorm(dense(x) + residual)``: BERT's post-norm output block."""

    def __init__(self, in_width: int, width: int, eps: float) -> None:
        super().__init__()
        self.dense = nn.Linear(in_width, width)
        self.LayerNorm = nn.LayerNorm(width, eps=eps)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(x) + residual)


class _BertAttention(nn.Module):
    def __init__(self, cfg: ImageRewardConfig, kv_width: int) -> None:
        super().__init__()
        self.heads = cfg.text_heads
        self.self = _BertSelf(cfg.text_width, kv_width)
        self.output = _BertProjectNorm(cfg.text_width, cfg.text_width, cfg.text_eps)

    def forward(self, x: torch.Tensor, context: torch.Tensor, bias=None) -> torch.Tensor:
        s = self.self
        out = _attend(s.query(x), s.key(context), s.value(context), self.heads, bias)
        return self.output(out, x)


class _BertIntermediate(nn.Module):
    def __init__(self, cfg: ImageRewardConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(cfg.text_width, cfg.text_intermediate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return functional.gelu(self.dense(x))


class _BertLayer(nn.Module):
    def __init__(self, cfg: ImageRewardConfig) -> None:
        super().__init__()
        self.attention = _BertAttention(cfg, cfg.text_width)
        self.crossattention = _BertAttention(cfg, cfg.vision_width)
        self.intermediate = _BertIntermediate(cfg)
        self.output = _BertProjectNorm(cfg.text_intermediate, cfg.text_width, cfg.text_eps)

    def forward(self, x: torch.Tensor, image: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        x = self.attention(x, x, bias)
        x = self.crossattention(x, image)
        return self.output(self.intermediate(x), x)


class _BertEncoder(nn.Module):
    def __init__(self, cfg: ImageRewardConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList(_BertLayer(cfg) for _ in range(cfg.text_layers))


class MedBertModel(nn.Module):
    """BLIP's multimodal BERT: prompt tokens attend to themselves, then to the image tokens."""

    def __init__(self, cfg: ImageRewardConfig) -> None:
        super().__init__()
        self.embeddings = _BertEmbeddings(cfg)
        self.encoder = _BertEncoder(cfg)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, image: torch.Tensor
    ) -> torch.Tensor:
        """Returns the last hidden states ``[N, L, text_width]``."""
        x = self.embeddings(input_ids)
        # BERT's additive key mask: 0 where attended, -10000 on padding.
        bias = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * -10000.0
        for layer in self.encoder.layer:
            x = layer(x, image, bias)
        return x


class _BlipItm(nn.Module):
    def __init__(self, cfg: ImageRewardConfig) -> None:
        super().__init__()
        self.visual_encoder = BlipVisionTransformer(cfg)
        self.text_encoder = MedBertModel(cfg)
        self.vision_proj = nn.Linear(cfg.vision_width, cfg.proj_dim)
        self.text_proj = nn.Linear(cfg.text_width, cfg.proj_dim)


class _RewardHead(nn.Module):
    """The linear stack ``layers.0/2/4/6/7`` (indices 1, 3, 5 held dropouts; no activations)."""

    def __init__(self, cfg: ImageRewardConfig) -> None:
        super().__init__()
        sizes = (cfg.text_width, *cfg.head_sizes, 1)
        linears = [nn.Linear(a, b) for a, b in itertools.pairwise(sizes)]
        gaps = [nn.Identity() for _ in range(3)]  # dropout slots, identity at inference
        self.layers = nn.Sequential(
            linears[0], gaps[0], linears[1], gaps[1], linears[2], gaps[2], linears[3], linears[4]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class ImageRewardModel(nn.Module):
    """The full reward network; ``forward`` returns the normalised reward ``[N]``."""

    def __init__(self, cfg: ImageRewardConfig | None = None) -> None:
        super().__init__()
        self.config = cfg or ImageRewardConfig()
        self.blip = _BlipItm(self.config)
        self.mlp = _RewardHead(self.config)

    def raw_reward(
        self, pixels: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        """The MLP output on the text class token, before normalisation, ``[N]``."""
        image = self.blip.visual_encoder(pixels)
        text = self.blip.text_encoder(input_ids, attention_mask, image)
        return self.mlp(text[:, 0, :]).squeeze(-1)

    def forward(
        self, pixels: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        raw = self.raw_reward(pixels, input_ids, attention_mask)
        return (raw - self.config.reward_mean) / self.config.reward_std
