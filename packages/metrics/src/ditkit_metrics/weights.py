"""Weight files of the metric networks: where they are, what they must hold, how they load.

No weights ship with ditkit and none are downloaded: the user names a local file or folder, by
argument or by environment variable. Each published checkpoint's layout (state-dict key ->
tensor shape) is committed as a JSON manifest in ``ditkit_metrics/manifests/``; a file is
checked against its manifest before it is loaded with ``strict=True``, so a wrong or truncated
file fails with a list of the differing keys instead of a silent partial load.

Example:
    >>> from ditkit_metrics.weights import load_manifest
    >>> manifest = load_manifest("lpips_alex_heads")
    >>> manifest.file_name, manifest.shapes["lin0.model.1.weight"]
    ('alex.pth', (1, 64, 1, 1))
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from ditkit_interfaces.errors import DitkitError

__all__ = [
    "MANIFEST_DIR",
    "Manifest",
    "MissingWeightsError",
    "WeightsLayoutError",
    "check_layout",
    "find_in_folder",
    "load_manifest",
    "load_weights_file",
    "random_state_dict",
    "resolve_weights",
]

MANIFEST_DIR = Path(__file__).resolve().parent / "manifests"


@dataclass(frozen=True)
class Manifest:
    """The key/shape layout of one published checkpoint.

    Attributes:
        name: the manifest's file stem, e.g. ``"torchvision_alexnet"``.
        file_name: the checkpoint's published file name, e.g. ``"alexnet-owt-7be5be79.pth"``.
        url: where the user can download it (ditkit never does).
        shapes: state-dict key -> tensor shape, in the checkpoint's order.
        optional_suffixes: key suffixes a file may omit (e.g. ``num_batches_tracked``).
        description: one line saying what the checkpoint is.
        unused_prefixes: keys checked for layout but not loaded (e.g. an ImageNet classifier
            head that a metric does not run).
    """

    name: str
    file_name: str
    url: str
    shapes: dict[str, tuple[int, ...]]
    optional_suffixes: tuple[str, ...] = ()
    description: str = ""
    unused_prefixes: tuple[str, ...] = ()

    def num_params(self) -> int:
        """Total number of elements of the checkpoint's tensors."""
        return sum(math.prod(shape) for shape in self.shapes.values())


def load_manifest(name: str) -> Manifest:
    """Read ``manifests/<name>.json``."""
    path = MANIFEST_DIR / f"{name}.json"
    if not path.is_file():
        known = sorted(p.stem for p in MANIFEST_DIR.glob("*.json"))
        raise KeyError(f"no weights manifest {name!r}; known: {', '.join(known)}")
    data = json.loads(path.read_text())
    if "shapes" not in data:  # a bare {key: shape} manifest
        data = {"shapes": data}
    return Manifest(
        name=name,
        file_name=data.get("file_name", ""),
        url=data.get("url", ""),
        shapes={k: tuple(v) for k, v in data["shapes"].items()},
        optional_suffixes=tuple(data.get("optional_suffixes", ())),
        description=data.get("description", ""),
        unused_prefixes=tuple(data.get("unused_prefixes", ())),
    )


class MissingWeightsError(DitkitError, FileNotFoundError):
    """The weights a metric needs are not on this machine; the message says what to download.

    Args:
        metric: what the user asked for, e.g. ``"LPIPS (alex)"``.
        env_var: the environment variable that can point at the weights.
        manifests: the checkpoints needed (their file names and download addresses).
        looked_at: the paths that were tried, if any.
    """

    def __init__(
        self,
        metric: str,
        env_var: str,
        manifests: list[Manifest],
        looked_at: list[Path] | None = None,
    ) -> None:
        self.metric, self.env_var, self.manifests = metric, env_var, manifests
        lines = [f"{metric} needs pretrained weights, which ditkit does not download."]
        if looked_at:
            lines.append("Looked for: " + ", ".join(str(p) for p in looked_at) + ".")
        lines.append("Download:")
        lines += [f"  {m.file_name}  ({m.description})  from {m.url}" for m in manifests]
        lines.append(
            f"Put the file(s) in one folder and set {env_var}=/that/folder "
            "(or pass weights='/that/folder' / the file path to the function)."
        )
        super().__init__("\n".join(lines))


class WeightsLayoutError(DitkitError, ValueError):
    """A weights file does not have its checkpoint's key/shape layout."""


def resolve_weights(
    explicit: str | os.PathLike | None,
    env_var: str,
    metric: str,
    manifests: list[Manifest],
) -> Path:
    """The weights path to use: ``explicit``, else ``$env_var``; it must exist.

    Returns a file or a folder (a folder should hold the manifests' ``file_name`` files).
    Raises :class:`MissingWeightsError` naming what to download when nothing is found.
    """
    chosen = explicit if explicit is not None else os.environ.get(env_var) or None
    if chosen is None:
        raise MissingWeightsError(metric, env_var, manifests)
    path = Path(chosen).expanduser()
    if not path.exists():
        raise MissingWeightsError(metric, env_var, manifests, looked_at=[path])
    return path


def find_in_folder(
    folder: Path, metric: str, env_var: str, manifests: list[Manifest]
) -> list[Path]:
    """The manifests' files inside ``folder``; :class:`MissingWeightsError` if any is absent."""
    paths = [folder / m.file_name for m in manifests]
    missing = [(m, p) for m, p in zip(manifests, paths, strict=True) if not p.is_file()]
    if missing:
        raise MissingWeightsError(metric, env_var, [m for m, _ in missing], [p for _, p in missing])
    return paths


def load_weights_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a state dict from ``.pth``/``.pt``/``.bin`` (``torch.load``, weights only) or
    ``.safetensors``, onto the CPU."""
    source = Path(path)
    if source.suffix == ".safetensors":
        from safetensors.torch import load_file

        return dict(load_file(str(source)))
    loaded = torch.load(source, map_location="cpu", weights_only=True)
    if not isinstance(loaded, Mapping):
        raise WeightsLayoutError(f"{source} holds a {type(loaded).__name__}, not a state dict")
    return dict(loaded)


def check_layout(
    state_dict: Mapping[str, torch.Tensor], manifest: Manifest, source: str = "the weights"
) -> dict[str, torch.Tensor]:
    """Check ``state_dict`` against ``manifest``; return it with optional keys filled in.

    Raises :class:`WeightsLayoutError` listing missing, unexpected and mis-shaped keys.
    """
    optional = manifest.optional_suffixes
    missing = [
        k
        for k in manifest.shapes
        if k not in state_dict and not (optional and k.endswith(optional))
    ]
    unexpected = [k for k in state_dict if k not in manifest.shapes]
    wrong = [
        f"{k}: {tuple(state_dict[k].shape)} (expected {manifest.shapes[k]})"
        for k in state_dict
        if k in manifest.shapes and tuple(state_dict[k].shape) != manifest.shapes[k]
    ]
    if missing or unexpected or wrong:
        parts = [f"{source} does not have the layout of {manifest.file_name} ({manifest.name}):"]
        for title, keys in (("missing", missing), ("unexpected", unexpected), ("shape", wrong)):
            if keys:
                shown = ", ".join(keys[:8]) + (
                    f", ... ({len(keys)} in all)" if len(keys) > 8 else ""
                )
                parts.append(f"  {title}: {shown}")
        raise WeightsLayoutError("\n".join(parts))
    filled = dict(state_dict)
    for key in manifest.shapes:
        if key not in filled:  # an optional counter such as BatchNorm's num_batches_tracked
            filled[key] = torch.zeros((), dtype=torch.long)
    return filled


def random_state_dict(
    shapes: Mapping[str, tuple[int, ...]],
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    overrides: Mapping[str, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """Random tensors of the given layout whose activations stay finite through deep nets.

    Convolution/linear weights are normal with std ``1/sqrt(fan_in)``; BatchNorm running
    variances and scales lie in [0.5, 1.5]; biases and running means are small; integer counters
    are zero; ``overrides`` replaces entries (e.g. constant buffers). Used by the tests and by
    ``tools/metrics/crosscheck_reference.py``.
    """
    generator = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    for key, shape in shapes.items():
        leaf = key.rsplit(".", 1)[-1]
        if leaf == "num_batches_tracked":
            out[key] = torch.zeros(shape, dtype=torch.long)
        elif leaf == "running_var" or (leaf == "weight" and len(shape) == 1):
            out[key] = 0.5 + torch.rand(shape, generator=generator, dtype=dtype)
        elif len(shape) <= 1:
            out[key] = 0.1 * torch.randn(shape, generator=generator, dtype=dtype)
        else:
            fan_in = math.prod(shape[1:])
            std = 1.0 / math.sqrt(fan_in)
            out[key] = std * torch.randn(shape, generator=generator, dtype=dtype)
    out.update(overrides or {})
    return out
