"""CLIP score: how well each image matches its prompt, by a CLIP model loaded from a local folder.

Definition (Hessel et al.'s CLIPScore with torchmetrics' weight 100): for each image/prompt
pair ``100 * max(cos(E_image, E_text), 0)``, averaged over the pairs. torchmetrics 1.9's
``CLIPScore`` clamps the mean rather than each pair; cache-dit 1.5.3 averages
``logits_per_image`` of transformers' ``CLIPModel``, ``exp(logit_scale) * cos``, unclamped, and
the published CLIP checkpoints end training with ``exp(logit_scale) = 100``. All three agree
whenever no cosine is negative (always, in practice, for a real image and its prompt).

Weights: a folder holding a transformers CLIP checkpoint: ``config.json``, ``model.safetensors``
(or ``pytorch_model.bin``), ``vocab.json`` and ``merges.txt``; passed as ``model_dir`` or in
``CLIP_MODEL_DIR``. The reference model is openai/clip-vit-large-patch14 (torchmetrics'
default; note that cache-dit 1.5.3 defaults to laion/CLIP-ViT-g-14-laion2B-s12B-b42K, which
this code loads just as well). The weights are loaded with ``strict=True``; only the
``*.position_ids`` index buffers that older exports carry are dropped first. Its key/shape
layout is committed in ``manifests/clip_vit_large_patch14.json``.

Preprocessing, in plain torch (no torchvision, no PIL): resize the shortest side to the model's
image size (bicubic, antialiased), clamp to [0, 1], center crop, normalise with CLIP's mean/std.

Example:
    >>> import torch
    >>> x = preprocess_images(torch.rand(2, 3, 40, 60), 32)
    >>> tuple(x.shape)
    (2, 3, 32, 32)
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional

from ditkit_interfaces.errors import MissingComponentError

from .weights import Manifest, MissingWeightsError, check_layout, load_manifest

__all__ = [
    "CLIP_MEAN",
    "CLIP_STD",
    "OPENAI_CLIP_VIT_L14_CONFIG",
    "CLIPScorer",
    "MissingModelDirError",
    "check_images",
    "check_prompts",
    "clip_state_dict_layout",
    "compute_clip_score",
    "hub_file",
    "preprocess_images",
    "require_transformers",
    "resolve_model_dir",
]

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
ENV_VAR = "CLIP_MODEL_DIR"
METRIC = "CLIP score"
DEFAULT_MODEL = "openai/clip-vit-large-patch14"
MANIFEST = "clip_vit_large_patch14"

#: The architecture fields of openai/clip-vit-large-patch14's ``config.json``.
OPENAI_CLIP_VIT_L14_CONFIG: dict[str, Any] = {
    "projection_dim": 768,
    "logit_scale_init_value": 2.6592,
    "text_config": {
        "vocab_size": 49408,
        "hidden_size": 768,
        "intermediate_size": 3072,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "max_position_embeddings": 77,
        "hidden_act": "quick_gelu",
        "layer_norm_eps": 1e-5,
        "projection_dim": 768,
    },
    "vision_config": {
        "hidden_size": 1024,
        "intermediate_size": 4096,
        "num_hidden_layers": 24,
        "num_attention_heads": 16,
        "image_size": 224,
        "patch_size": 14,
        "hidden_act": "quick_gelu",
        "layer_norm_eps": 1e-5,
        "projection_dim": 768,
    },
}

_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
_TOKENIZER_FILES = ("vocab.json", "merges.txt")


# --- inputs -------------------------------------------------------------------------------


def check_images(images: torch.Tensor) -> torch.Tensor:
    """Validates an image batch ``[N, 3, H, W]``: float in [0, 1] (uint8 is divided by 255)."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a tensor [N, 3, H, W]; got {shape}")
    if images.shape[0] == 0:
        raise ValueError("images is an empty batch")
    if images.dtype == torch.uint8:
        return images.float() / 255.0
    if not images.is_floating_point():
        raise ValueError(f"images must be float in [0, 1] or uint8; got {images.dtype}")
    lo, hi = float(images.min()), float(images.max())
    if lo < -1e-3 or hi > 1 + 1e-3:
        raise ValueError(f"images must lie in [0, 1]; got values in [{lo:.3f}, {hi:.3f}]")
    return images.float()


def check_prompts(prompts: str | Sequence[str], n: int) -> list[str]:
    """One prompt per image; a single string is used for every image."""
    if isinstance(prompts, str):
        return [prompts] * n
    prompts = list(prompts)
    if len(prompts) != n or not all(isinstance(p, str) for p in prompts):
        raise ValueError(f"prompts must be a string or {n} strings (one per image)")
    return prompts


def preprocess_images(
    images: torch.Tensor,
    size: int,
    mean: Sequence[float] = CLIP_MEAN,
    std: Sequence[float] = CLIP_STD,
) -> torch.Tensor:
    """Shortest side to ``size`` (bicubic, antialiased), clamp, center crop, normalise.

    Sizes and crop offsets follow torchvision's ``Resize(size)`` + ``CenterCrop(size)``: the long
    side becomes ``int(size * long / short)`` and the crop starts at ``round((H - size) / 2)``.
    """
    images = check_images(images)
    h, w = images.shape[-2:]
    short, long = min(h, w), max(h, w)
    if short != size:
        new_long = int(size * long / short)
        new_hw = (size, new_long) if h <= w else (new_long, size)
        images = functional.interpolate(images, size=new_hw, mode="bicubic", antialias=True)
        images = images.clamp(0.0, 1.0)
        h, w = new_hw
    top, left = round((h - size) / 2.0), round((w - size) / 2.0)
    images = images[..., top : top + size, left : left + size]
    m = torch.tensor(mean, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return (images - m) / s


# --- weights ------------------------------------------------------------------------------


class MissingModelDirError(MissingWeightsError):
    """A model folder (argument or environment variable) is absent or lacks files.

    Same fields as :class:`MissingWeightsError`; the message names the ``model_dir`` argument.
    """

    def __init__(
        self,
        metric: str,
        env_var: str,
        manifests: list[Manifest],
        looked_at: list[Path] | None = None,
    ) -> None:
        self.metric, self.env_var, self.manifests = metric, env_var, manifests
        lines = [f"{metric} needs a local model folder, which ditkit does not download."]
        if looked_at:
            lines.append("Looked for: " + ", ".join(str(p) for p in looked_at) + ".")
        lines.append("Download into one folder DIR:")
        lines += [f"  {m.file_name}  ({m.description})  from {m.url}" for m in manifests]
        lines.append(f"Then pass model_dir=DIR or set {env_var}=DIR.")
        FileNotFoundError.__init__(self, "\n".join(lines))


def hub_file(repo: str, file_name: str, description: str) -> Manifest:
    """A downloadable file of a Hugging Face repository, for :class:`MissingModelDirError`."""
    url = f"https://huggingface.co/{repo}/resolve/main/{file_name}"
    return Manifest(
        name=file_name, file_name=file_name, url=url, shapes={}, description=description
    )


def _clip_files() -> list[Manifest]:
    weights = load_manifest(MANIFEST)
    return [
        hub_file(DEFAULT_MODEL, "config.json", "the model configuration"),
        weights,
        hub_file(DEFAULT_MODEL, "vocab.json", "tokenizer vocabulary"),
        hub_file(DEFAULT_MODEL, "merges.txt", "tokenizer merges"),
    ]


def resolve_model_dir(model_dir: str | os.PathLike | None) -> Path:
    """The folder to load from (argument, else ``CLIP_MODEL_DIR``), checked for every file."""
    given = model_dir if model_dir is not None else os.environ.get(ENV_VAR) or None
    if given is None:
        raise MissingModelDirError(METRIC, ENV_VAR, _clip_files())
    path = Path(given).expanduser()
    if not path.is_dir():
        raise MissingModelDirError(METRIC, ENV_VAR, _clip_files(), [path])
    needed = [m for m in _clip_files() if m.file_name in ("config.json", *_TOKENIZER_FILES)]
    missing = [m for m in needed if not (path / m.file_name).is_file()]
    if not any((path / f).is_file() for f in _WEIGHT_FILES):
        missing.insert(1, load_manifest(MANIFEST))
    if missing:
        raise MissingModelDirError(METRIC, ENV_VAR, missing, [path / m.file_name for m in missing])
    return path


def require_transformers(metric: str) -> Any:
    """The ``transformers`` module, or :class:`MissingComponentError` naming the extra."""
    try:
        import transformers
    except ImportError as err:
        pip = "pip install 'ditkit-metrics[prompts]'"
        raise MissingComponentError(metric, "transformers", pip, reason=str(err)) from err
    return transformers


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if (path / "model.safetensors").is_file():
        from safetensors.torch import load_file

        return load_file(str(path / "model.safetensors"))
    return torch.load(path / "pytorch_model.bin", map_location="cpu", weights_only=True)


def clip_state_dict_layout(config: Any) -> dict[str, list[int]]:
    """Key -> shape of transformers' ``CLIPModel`` for ``config`` (a ``CLIPConfig`` or dict)."""
    from transformers import CLIPConfig, CLIPModel

    if isinstance(config, dict):
        config = CLIPConfig(**config)
    with torch.device("meta"):
        model = CLIPModel(config)
    return {k: list(v.shape) for k, v in model.state_dict().items()}


def load_clip(model_dir: str | os.PathLike | None, device: torch.device | str = "cpu"):
    """Loads ``(CLIPModel, CLIPTokenizer)`` from a local folder, weights with ``strict=True``.

    The file is first checked against the layout of the model its ``config.json`` describes
    (for openai/clip-vit-large-patch14, the committed manifest), so a wrong file fails with
    the list of differing keys.
    """
    transformers = require_transformers(METRIC)
    path = resolve_model_dir(model_dir)
    config = transformers.CLIPConfig.from_pretrained(str(path))
    with torch.device(device):
        model = transformers.CLIPModel(config)
    expected = dataclasses.replace(
        load_manifest(MANIFEST),
        name=f"CLIPModel of {path / 'config.json'}",
        shapes={k: tuple(v.shape) for k, v in model.state_dict().items()},
    )
    state = {k: v for k, v in _read_state_dict(path).items() if not k.endswith(".position_ids")}
    model.load_state_dict(check_layout(state, expected, str(path)), strict=True)
    tokenizer = transformers.CLIPTokenizer.from_pretrained(str(path))
    return model.eval(), tokenizer


# --- the score ----------------------------------------------------------------------------


class CLIPScorer:
    """A loaded CLIP model; call it on an image batch and prompts to get the CLIP score.

    Args:
        model_dir: folder of the checkpoint (see the module docstring); else ``CLIP_MODEL_DIR``.
        device: where the model runs (default: CUDA when available, else CPU).
        batch_size: image/prompt pairs per forward pass.
    """

    def __init__(
        self,
        model_dir: str | os.PathLike | None = None,
        device: torch.device | str | None = None,
        batch_size: int = 16,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} must be >= 1")
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.model, self.tokenizer = load_clip(model_dir, self.device)
        self.image_size = int(self.model.config.vision_config.image_size)
        self.max_length = int(self.model.config.text_config.max_position_embeddings)

    @torch.no_grad()
    def cosines(self, images: torch.Tensor, prompts: str | Sequence[str]) -> torch.Tensor:
        """Cosine similarity of each image with its prompt, ``[N]`` float32 on the CPU."""
        images = check_images(images)
        prompts = check_prompts(prompts, images.shape[0])
        out = []
        for start in range(0, len(prompts), self.batch_size):
            chunk = slice(start, start + self.batch_size)
            pixels = preprocess_images(images[chunk].to(self.device), self.image_size)
            text = self.tokenizer(
                prompts[chunk],
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            ).to(self.device)
            result = self.model(
                input_ids=text["input_ids"],
                attention_mask=text["attention_mask"],
                pixel_values=pixels.to(self.model.dtype),
            )
            img = functional.normalize(result.image_embeds.float(), dim=-1)
            txt = functional.normalize(result.text_embeds.float(), dim=-1)
            out.append((img * txt).sum(-1).cpu())
        return torch.cat(out)

    def scores(self, images: torch.Tensor, prompts: str | Sequence[str]) -> torch.Tensor:
        """Per-pair CLIP score ``100 * max(cos, 0)``, ``[N]``."""
        return 100.0 * self.cosines(images, prompts).clamp(min=0.0)

    def __call__(self, images: torch.Tensor, prompts: str | Sequence[str]) -> float:
        value = float(self.scores(images, prompts).mean())
        if not math.isfinite(value):
            raise FloatingPointError("CLIP score is not finite; check the weights")
        return value


def compute_clip_score(
    images: torch.Tensor,
    prompts: str | Sequence[str],
    model_dir: str | os.PathLike | None = None,
    *,
    device: torch.device | str | None = None,
    batch_size: int = 16,
) -> float:
    """Mean CLIP score of ``images`` (``[N, 3, H, W]`` in [0, 1]) against ``prompts``.

    Loads the model each call; keep a :class:`CLIPScorer` to score many batches.
    """
    if device is None and isinstance(images, torch.Tensor):
        device = images.device
    return CLIPScorer(model_dir, device=device, batch_size=batch_size)(images, prompts)
