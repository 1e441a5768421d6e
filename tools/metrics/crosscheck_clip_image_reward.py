"""Cross-check ditkit's CLIP score and ImageReward against the reference libraries (GPU machine).

Needs torchvision, timm, transformers and the ``image-reward`` package (a pure-Python wheel:
install it with ``pip install --no-deps``; its other requirements are shimmed or unused);
torchmetrics is used when installed. No network and no published weights: every network gets
random weights of the published layout, written to a temporary folder and loaded through
ditkit's public API.

Checks, each a row of the printed table (the script exits 1 if any fails):

- ImageReward: the reference ``ImageReward`` (image-reward's BLIP ViT-L + med BERT + MLP) has
  exactly the keys and shapes of ``manifests/image_reward_v1.json``; with the same random
  weights, ditkit's rewards equal the reference's ``score_gard`` on the same pixels, its
  ``score`` on 224 px PIL images (whole pipeline: tokenization, preprocessing), and, on
  non-square images, cache-dit 1.5.3's torchvision-v2 transform (on float images, clamped)
  then ``score_gard``.
- CLIP: transformers' ``CLIPModel`` with openai/clip-vit-large-patch14's config has the keys
  and shapes of ``manifests/clip_vit_large_patch14.json``; ditkit's ``100 * cos`` equals
  cache-dit's ``logits_per_image`` (CLIPProcessor path) and torchmetrics' per-pair
  ``100 * cos`` (its ``CLIPScore`` then clamps the mean at 0; ditkit clamps each pair, as the
  CLIPScore paper does: the same whenever every cosine is >= 0).

The reference packages predate transformers 5 and timm 1; what they import that moved is
shimmed (timm 0.6 module paths, fairscale's checkpoint wrapper, transformers 4 helpers that
med's ``BertModel`` calls) without changing any computation. The reference tokenizer is built
from a local word list instead of downloading bert-base-uncased.

Last run: all 12 checks passed on an H100 (torch 2.11, transformers 5.17, timm 1.0.29,
torchvision 0.26, torchmetrics 1.9); rewards within 2.5e-6, CLIP ``100 * cos`` within 1e-5 at
224 px and 0.011 through the uint8 resizing of CLIPProcessor.

Usage::

    PYTHONPATH=packages/metrics/src:packages/interfaces/src \\
        python3 tools/metrics/crosscheck_clip_image_reward.py [--device cuda] [--only clip]
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import math
import sys
import tempfile
import types
from collections.abc import Callable
from pathlib import Path

import torch

from ditkit_metrics.clip_score import OPENAI_CLIP_VIT_L14_CONFIG, CLIPScorer, compute_clip_score
from ditkit_metrics.image_reward import ImageRewardScorer
from ditkit_metrics.weights import load_manifest, random_state_dict

WORDS = ["a", "photo", "of", "cat", "dog", "red", "blue", "sky", "tree", "house", "car", "on"]
WORDS += ["the", "road", "with", "and", "small", "big"]
PROMPTS = ["a photo of a cat", "a red car on the road", "blue sky", "a small house with a tree"]
MED_CONFIG = {  # BLIP's configs/med_config.json, as THUDM/ImageReward ships it
    "architectures": ["BertModel"],
    "attention_probs_dropout_prob": 0.1,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "hidden_size": 768,
    "initializer_range": 0.02,
    "intermediate_size": 3072,
    "layer_norm_eps": 1e-12,
    "max_position_embeddings": 512,
    "model_type": "bert",
    "num_attention_heads": 12,
    "num_hidden_layers": 12,
    "pad_token_id": 0,
    "type_vocab_size": 2,
    "vocab_size": 30524,
    "encoder_width": 768,
    "add_cross_attention": True,
}

Row = tuple[str, str, float, float, bool]  # (model, check, value, tolerance, ok)


def _row(model: str, check: str, value: float, tol: float) -> Row:
    return (model, check, value, tol, bool(math.isfinite(value) and value <= tol))


def _layout_row(model: str, reference: dict[str, torch.Tensor], manifest_name: str) -> Row:
    manifest = load_manifest(manifest_name)
    got = {k: tuple(v.shape) for k, v in reference.items()}
    missing = [k for k in manifest.shapes if k not in got]
    extra = [k for k in got if k not in manifest.shapes]
    wrong = [k for k in got if k in manifest.shapes and got[k] != manifest.shapes[k]]
    for title, keys in (("missing", missing), ("unexpected", extra), ("shape", wrong)):
        if keys:
            print(f"  {manifest_name}: {title} vs reference: {keys[:10]}", file=sys.stderr)
    order_ok = list(got) == list(manifest.shapes)
    bad = len(missing) + len(extra) + len(wrong) + (0 if order_ok else 1)
    return _row(model, f"state_dict keys/shapes == {manifest_name}.json (bad keys)", bad, 0)


def _images(n: int, h: int, w: int, seed: int) -> torch.Tensor:
    """uint8-valued float images in [0, 1], so PIL and tensor paths see the same pixels."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, h, w), generator=g).float() / 255.0


def _to_pil(image: torch.Tensor):
    from PIL import Image

    array = (image * 255).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
    return Image.fromarray(array)


# --- shims for the reference packages --------------------------------------------------------


def _shim_reference_imports() -> None:
    """Make image-reward 1.5 importable beside transformers 5 / without fairscale."""
    try:
        import fairscale.nn.checkpoint.checkpoint_activations  # noqa: F401
    except ImportError:  # used only with gradient checkpointing, which the check never enables
        names = ["fairscale", "fairscale.nn", "fairscale.nn.checkpoint"]
        names.append("fairscale.nn.checkpoint.checkpoint_activations")
        for name in names:
            sys.modules.setdefault(name, types.ModuleType(name))
        sys.modules[names[-1]].checkpoint_wrapper = lambda module, **_: module
    import transformers.modeling_utils as mu
    import transformers.pytorch_utils as pu

    def _chunked(fn: Callable, chunk_size: int, dim: int, *inputs: torch.Tensor):
        return fn(*inputs)  # chunk_size_feed_forward is 0 in the med config: no chunking

    def _unused(*_args, **_kwargs):
        raise NotImplementedError("head pruning is not part of the cross-check")

    for name, fallback in (
        ("apply_chunking_to_forward", getattr(pu, "apply_chunking_to_forward", _chunked)),
        ("find_pruneable_heads_and_indices", _unused),
        ("prune_linear_layer", getattr(pu, "prune_linear_layer", _unused)),
    ):
        if not hasattr(mu, name):
            setattr(mu, name, fallback)


def _shim_med_model(med: types.ModuleType) -> None:
    """Helpers of transformers 4's ``PreTrainedModel`` that med's ``BertModel`` calls."""
    cls = med.BertModel
    # transformers 5's init_weights needs post_init() state that med never sets up; the
    # initial values do not matter (the check loads weights), so run med's own initializer.
    cls.init_weights = lambda self: self.apply(self._init_weights)
    if not hasattr(cls, "get_head_mask"):
        cls.get_head_mask = lambda self, head_mask, layers: [None] * layers
    if not hasattr(cls, "invert_attention_mask"):

        def invert(self, mask: torch.Tensor) -> torch.Tensor:
            mask = mask[:, None, None, :] if mask.dim() == 2 else mask[:, None, :, :]
            mask = mask.to(self.dtype)
            return (1.0 - mask) * torch.finfo(self.dtype).min

        cls.invert_attention_mask = invert


def _local_bert_tokenizer(folder: Path):
    from transformers import BertTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")

    def init_tokenizer():  # BLIP's init_tokenizer, from the local vocabulary
        tokenizer = BertTokenizer.from_pretrained(str(folder))
        tokenizer.add_special_tokens({"bos_token": "[DEC]"})
        tokenizer.add_special_tokens({"additional_special_tokens": ["[ENC]"]})
        tokenizer.enc_token_id = tokenizer.convert_tokens_to_ids("[ENC]")
        return tokenizer

    return init_tokenizer


# --- ImageReward --------------------------------------------------------------------------


def _import_reference() -> tuple[types.ModuleType, types.ModuleType, type]:
    """image-reward's BLIP modules, without its package ``__init__`` (which pulls in openai's
    ``clip``, ``datasets`` and ``diffusers`` for scores this check does not use)."""
    _shim_reference_imports()
    for old, new in (  # timm 0.6 module names that timm 1.x moved
        ("timm.models.hub", "timm.models._hub"),
        ("timm.models.registry", "timm.models._registry"),
        ("timm.models.layers", "timm.layers"),
        ("timm.models.helpers", "timm.models._manipulate"),
    ):
        try:
            importlib.import_module(old)
        except ImportError:
            sys.modules[old] = importlib.import_module(new)
    spec = importlib.util.find_spec("ImageReward")
    if spec is None or spec.origin is None:
        raise SystemExit("install image-reward (pip install --no-deps image-reward) first")
    root = Path(spec.origin).parent
    for name, sub in (("ImageReward", root), ("ImageReward.models", root / "models")):
        package = types.ModuleType(name)
        package.__path__ = [str(sub)]
        sys.modules[name] = package
    blip_pretrain = importlib.import_module("ImageReward.models.BLIP.blip_pretrain")
    med = importlib.import_module("ImageReward.models.BLIP.med")
    reward = importlib.import_module("ImageReward.ImageReward")
    return blip_pretrain, med, reward.ImageReward


def check_image_reward(device: str, tmp: Path) -> list[Row]:
    blip_pretrain, med, ImageReward = _import_reference()
    _shim_med_model(med)
    folder = tmp / "image_reward"
    blip_pretrain.init_tokenizer = _local_bert_tokenizer(folder)
    (tmp / "med_config.json").write_text(json.dumps(MED_CONFIG))
    reference = ImageReward(med_config=str(tmp / "med_config.json"), device=device).eval()
    rows = [_layout_row("ImageReward", reference.state_dict(), "image_reward_v1")]

    manifest = load_manifest("image_reward_v1")
    pos = "blip.text_encoder.embeddings.position_ids"
    state = random_state_dict(manifest.shapes, seed=0, overrides={pos: torch.arange(512)[None]})
    reference.load_state_dict(state, strict=True)
    reference.to(device)
    torch.save(state, folder / "ImageReward.pt")
    ours = ImageRewardScorer(folder, device=device)

    images = _images(4, 224, 224, seed=1)
    pixels = reference.preprocess.transforms[-1](images).to(device)  # Normalize only
    ids, mask = ours.tokenize(PROMPTS)
    ref_ids = reference.blip.tokenizer(
        PROMPTS, padding="max_length", truncation=True, max_length=35, return_tensors="pt"
    )
    mismatched = (ids.cpu() != ref_ids.input_ids).sum() + (
        mask.cpu() != ref_ids.attention_mask
    ).sum()
    rows.append(_row("ImageReward", "token ids/mask == reference tokenizer", float(mismatched), 0))
    with torch.no_grad():
        ref = reference.score_gard(ids, mask, pixels).squeeze(-1).float().cpu()
    scale = max(1.0, float(ref.abs().max()))
    print(f"  ImageReward reference rewards (random weights): {ref.tolist()}")
    got = ours.scores(images, PROMPTS)
    tol = 1e-3 * scale
    rows.append(_row("ImageReward", "score_gard, same pixels: max |diff|", _diff(got, ref), tol))
    pil = [reference.score(p, _to_pil(im)) for p, im in zip(PROMPTS, images, strict=True)]
    pil_diff = _diff(got, torch.tensor(pil))
    rows.append(_row("ImageReward", "score(prompt, PIL 224 px): max |diff|", pil_diff, tol))

    from torchvision.transforms import v2  # cache-dit 1.5.3's transform, on float tensors

    cache_dit = v2.Compose(
        [
            v2.Resize(224, interpolation=v2.InterpolationMode.BICUBIC, antialias=True),
            v2.Lambda(lambda x: x.clamp(0, 1)),
            v2.CenterCrop(224),
            v2.Normalize((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)),
        ]
    )
    odd = _images(4, 300, 257, seed=2)
    with torch.no_grad():
        ref_odd = reference.score_gard(ids, mask, cache_dit(odd).to(device)).squeeze(-1).cpu()
    odd_diff = _diff(ours.scores(odd, PROMPTS), ref_odd)
    rows.append(
        _row("ImageReward", "300x257, torchvision v2 resize+crop: max |diff|", odd_diff, tol)
    )
    return rows


def _diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float().cpu() - b.float().cpu()).abs().max())


# --- CLIP ---------------------------------------------------------------------------------


def _clip_tokenizer_files(folder: Path) -> None:
    """Byte-level BPE files over single letters (no merges), ids below the 49408 vocabulary."""
    import string

    vocab: dict[str, int] = {}
    for letter in string.ascii_lowercase:
        vocab[letter] = len(vocab)
        vocab[letter + "</w>"] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")


class _FeaturesAsTensors:
    """torchmetrics 1.9 expects ``get_*_features`` to return tensors (transformers 4); in
    transformers 5 they return model outputs whose ``pooler_output`` is that tensor."""

    def __init__(self, model) -> None:
        self.model, self.config = model, model.config

    def to(self, device):
        self.model.to(device)
        return self

    def get_image_features(self, *args, **kwargs) -> torch.Tensor:
        out = self.model.get_image_features(*args, **kwargs)
        return out if isinstance(out, torch.Tensor) else out.pooler_output

    def get_text_features(self, *args, **kwargs) -> torch.Tensor:
        out = self.model.get_text_features(*args, **kwargs)
        return out if isinstance(out, torch.Tensor) else out.pooler_output


def check_clip(device: str, tmp: Path) -> list[Row]:
    from safetensors.torch import save_file
    from transformers import (
        CLIPConfig,
        CLIPImageProcessor,
        CLIPModel,
        CLIPProcessor,
        CLIPTokenizer,
    )

    folder = tmp / "clip"
    folder.mkdir()
    _clip_tokenizer_files(folder)
    tokenizer = CLIPTokenizer.from_pretrained(str(folder))
    text_config = dict(OPENAI_CLIP_VIT_L14_CONFIG["text_config"])
    text_config.update(eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id)
    config = CLIPConfig(**{**OPENAI_CLIP_VIT_L14_CONFIG, "text_config": text_config})
    reference = CLIPModel(config).eval()
    rows = [_layout_row("CLIP", reference.state_dict(), "clip_vit_large_patch14")]

    shapes = load_manifest("clip_vit_large_patch14").shapes
    state = random_state_dict(
        shapes, seed=0, overrides={"logit_scale": torch.tensor(math.log(100))}
    )
    reference.load_state_dict(state, strict=True)
    reference.to(device)
    config.save_pretrained(folder)
    save_file(state, str(folder / "model.safetensors"))
    processor = CLIPProcessor(image_processor=CLIPImageProcessor(), tokenizer=tokenizer)
    processor.save_pretrained(folder)
    ours = CLIPScorer(folder, device=device)

    for h, w, tol in ((224, 224, 1e-2), (300, 257, 0.05)):
        images = _images(4, h, w, seed=h)
        got = 100 * ours.cosines(images, PROMPTS)
        ref = []
        for prompt, image in zip(PROMPTS, images, strict=True):  # cache-dit 1.5.3's path
            inputs = processor(
                text=prompt,
                images=_to_pil(image),
                return_tensors="pt",
                padding=True,
                truncation=True,
            ).to(device)
            with torch.no_grad():
                ref.append(float(reference(**inputs).logits_per_image))
        print(f"  CLIP {h}x{w} reference 100*cos (random weights): {ref}")
        label = "PIL, exact size" if h == w == 224 else "PIL resize vs torch (uint8 rounding)"
        check = f"{h}x{w} vs CLIPProcessor+logits ({label})"
        rows.append(_row("CLIP", check, _diff(got, torch.tensor(ref)), tol))
        expected = float(torch.tensor(ref).clamp(min=0).mean())
        mean_diff = abs(compute_clip_score(images.to(device), PROMPTS, folder) - expected)
        rows.append(
            _row("CLIP", f"{h}x{w} compute_clip_score vs mean(max(ref, 0))", mean_diff, tol)
        )
        try:
            from torchmetrics.functional.multimodal.clip_score import _clip_score_update
        except ImportError:
            print("  torchmetrics is not installed: its row is skipped", file=sys.stderr)
            continue
        uint8 = [(im * 255).round().to(torch.uint8).to(device) for im in images]
        with torch.no_grad():  # torchmetrics' per-pair 100 * cos, before it averages and clamps
            tm, _ = _clip_score_update(uint8, PROMPTS, _FeaturesAsTensors(reference), processor)
        check = f"{h}x{w} vs torchmetrics per-pair 100*cos"
        rows.append(_row("CLIP", check, _diff(got, tm), tol))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--only", choices=("clip", "image_reward"))
    args = parser.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False  # compare in true float32
    torch.backends.cudnn.allow_tf32 = False
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.only in (None, "image_reward"):
            rows += check_image_reward(args.device, Path(tmp))
        if args.only in (None, "clip"):
            rows += check_clip(args.device, Path(tmp))
    print("\n| model | check | value | tolerance | ok |\n|---|---|---|---|---|")
    for model, check, value, tol, ok in rows:
        print(f"| {model} | {check} | {value:.3g} | {tol:.3g} | {'yes' if ok else 'NO'} |")
    failed = [r for r in rows if not r[4]]
    if failed:
        print(f"\nFAILED: {len(failed)} of {len(rows)} checks", file=sys.stderr)
        return 1
    print(f"\nall {len(rows)} checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
