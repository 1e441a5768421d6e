"""LPIPS (Zhang et al. 2018, version 0.1) with the AlexNet or VGG16 trunk, in plain torch.

The module's state dict has exactly the keys of ``lpips.LPIPS(net=..., version="0.1")`` from
the ``lpips`` 0.1.4 package (``scaling_layer.*``, ``net.slice<k>.<i>.*``, ``lin<k>.model.1.weight``
and their ``lins.<k>`` aliases), and the trunk's layers keep torchvision's ``features`` indices,
so the published checkpoints load unchanged with ``strict=True``:

- the ImageNet trunk: torchvision's ``alexnet-owt-7be5be79.pth`` / ``vgg16-397923af.pth``;
- the linear heads: ``alex.pth`` / ``vgg.pth`` of ``lpips/weights/v0.1/`` in the lpips wheel.

Point ``DITKIT_LPIPS_WEIGHTS`` (or the ``weights`` argument) at a folder holding both files of the
trunk you use, or at one file holding a whole ``lpips.LPIPS`` state dict (``torch.save(
model.state_dict())``).

Distance: both images are shifted and scaled per channel, run through the trunk; each of the five
feature maps is normalised to unit length over channels, the squared difference is weighted per
channel by the 1x1 head, averaged over space, and the five layers are summed.

Example:
    >>> import torch
    >>> from ditkit_metrics.lpips import LPIPS
    >>> model = LPIPS("alex").eval()  # random weights here; use load_lpips() for real ones
    >>> x = torch.rand(2, 3, 64, 64)
    >>> model(x, x, normalize=True).flatten().tolist()
    [0.0, 0.0]
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from .weights import (
    Manifest,
    WeightsLayoutError,
    check_layout,
    find_in_folder,
    load_manifest,
    load_weights_file,
    resolve_weights,
)

__all__ = ["ENV_VAR", "LPIPS", "NETS", "load_lpips", "lpips_manifests"]

ENV_VAR = "DITKIT_LPIPS_WEIGHTS"

# trunk: the torchvision ``features`` layers ("M" a max pool, (out, kernel, stride, pad) a conv
# followed by its ReLU), the first feature index of each of the 5 slices, head widths.
_ALEX_FEATURES = [(64, 11, 4, 2), "M3", (192, 5, 1, 2), "M3", (384, 3, 1, 1)]
_ALEX_FEATURES += [(256, 3, 1, 1), (256, 3, 1, 1), "M3"]
_VGG_CONVS = [64, 64, "M2", 128, 128, "M2", 256, 256, 256, "M2", 512, 512, 512, "M2"]
_VGG_CONVS += [512, 512, 512, "M2"]
_VGG_FEATURES = [v if isinstance(v, str) else (v, 3, 1, 1) for v in _VGG_CONVS]

NETS: dict[str, dict] = {
    "alex": {
        "features": _ALEX_FEATURES,
        "slices": (0, 2, 5, 8, 10, 12),
        "channels": (64, 192, 384, 256, 256),
        "trunk": "torchvision_alexnet",
        "min_size": 31,
    },
    "vgg": {
        "features": _VGG_FEATURES,
        "slices": (0, 4, 9, 16, 23, 30),
        "channels": (64, 128, 256, 512, 512),
        "trunk": "torchvision_vgg16",
        "min_size": 16,
    },
}
_SHIFT = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
_SCALE = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)


def _net_name(net: str) -> str:
    name = {"vgg16": "vgg"}.get(net.lower(), net.lower())
    if name not in NETS:
        raise ValueError(f"LPIPS net must be one of {sorted(NETS)}, got {net!r}")
    return name


def _feature_layers(spec: list) -> list[nn.Module]:
    layers: list[nn.Module] = []
    channels = 3
    for item in spec:
        if isinstance(item, str):  # "M<k>": max pool of kernel k, stride 2
            layers.append(nn.MaxPool2d(kernel_size=int(item[1:]), stride=2))
            continue
        out, kernel, stride, pad = item
        layers += [nn.Conv2d(channels, out, kernel, stride=stride, padding=pad), nn.ReLU(True)]
        channels = out
    return layers


class ScalingLayer(nn.Module):
    """Maps inputs in [-1, 1] to the trunk's ImageNet statistics (LPIPS v0.1 constants)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("shift", _SHIFT.clone())
        self.register_buffer("scale", _SCALE.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.shift) / self.scale


class _Trunk(nn.Module):
    """The trunk's features as ``slice1`` .. ``slice5``, layers named by torchvision index."""

    def __init__(self, spec: list, bounds: tuple[int, ...]) -> None:
        super().__init__()
        layers = _feature_layers(spec)
        for k in range(len(bounds) - 1):
            part = nn.Sequential()
            for index in range(bounds[k], bounds[k + 1]):
                part.add_module(str(index), layers[index])
            self.add_module(f"slice{k + 1}", part)
        self.num_slices = len(bounds) - 1

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for k in range(self.num_slices):
            x = getattr(self, f"slice{k + 1}")(x)
            outs.append(x)
        return outs


class _Head(nn.Module):
    """A 1x1 convolution to one channel without bias (dropout before it, as in training)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class LPIPS(nn.Module):
    """The LPIPS network; ``forward(x, y)`` returns distances of shape ``[N, 1, 1, 1]``.

    Build it with random weights as ``LPIPS(net)``; load real ones with :func:`load_lpips`.
    """

    def __init__(self, net: str = "alex") -> None:
        super().__init__()
        self.net_name = _net_name(net)
        spec = NETS[self.net_name]
        self.scaling_layer = ScalingLayer()
        self.net = _Trunk(spec["features"], spec["slices"])
        heads = [_Head(c) for c in spec["channels"]]
        for k, head in enumerate(heads):
            self.add_module(f"lin{k}", head)
        self.lins = nn.ModuleList(heads)  # aliases: lpips keeps both names in its state dict
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor, y: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        """Distances between ``x`` and ``y`` (``[N, 3, H, W]`` in [-1, 1], or in [0, 1] with
        ``normalize=True``)."""
        smallest = NETS[self.net_name]["min_size"]
        if min(x.shape[-2:]) < smallest:
            raise ValueError(
                f"LPIPS ({self.net_name}) needs images of at least {smallest}x{smallest} "
                f"pixels, got {tuple(x.shape[-2:])}"
            )
        if normalize:
            x, y = 2 * x - 1, 2 * y - 1
        feats_x = self.net(self.scaling_layer(x))
        feats_y = self.net(self.scaling_layer(y))
        total = torch.zeros((), dtype=x.dtype, device=x.device)
        for head, fx, fy in zip(self.lins, feats_x, feats_y, strict=True):
            fx = fx / (fx.square().sum(dim=1, keepdim=True).sqrt() + 1e-10)
            fy = fy / (fy.square().sum(dim=1, keepdim=True).sqrt() + 1e-10)
            total = total + head((fx - fy).square()).mean(dim=(2, 3), keepdim=True)
        return total


def lpips_manifests(net: str) -> tuple[Manifest, Manifest, Manifest]:
    """The manifests of ``net``: (torchvision trunk, lpips heads, whole ``lpips.LPIPS`` module)."""
    name = _net_name(net)
    return (
        load_manifest(NETS[name]["trunk"]),
        load_manifest(f"lpips_{name}_heads"),
        load_manifest(f"lpips_{name}"),
    )


def _from_published(trunk: dict, heads: dict, net: str) -> dict[str, torch.Tensor]:
    """The module state dict assembled from the torchvision trunk and the lpips heads files."""
    bounds = NETS[net]["slices"]
    state = {"scaling_layer.shift": _SHIFT.clone(), "scaling_layer.scale": _SCALE.clone()}
    for key, tensor in trunk.items():
        group, index, leaf = key.split(".")
        if group != "features":
            continue  # the ImageNet classifier: checked against the manifest, never run
        k = next(k for k in range(len(bounds) - 1) if bounds[k] <= int(index) < bounds[k + 1])
        state[f"net.slice{k + 1}.{index}.{leaf}"] = tensor
    for k in range(len(NETS[net]["channels"])):
        weight = heads[f"lin{k}.model.1.weight"]
        state[f"lin{k}.model.1.weight"] = weight
        state[f"lins.{k}.model.1.weight"] = weight
    return state


def load_lpips(
    net: str = "alex",
    weights: str | os.PathLike | None = None,
    device: torch.device | str | None = None,
) -> LPIPS:
    """Build LPIPS(``net``) and load its published weights (strict), in eval mode.

    Args:
        net: ``"alex"`` (cache-dit's default) or ``"vgg"``.
        weights: a folder holding the trunk and heads files, or one file with a whole
            ``lpips.LPIPS`` state dict; defaults to ``$DITKIT_LPIPS_WEIGHTS``.
        device: where to put the model (default CPU).

    Raises:
        MissingWeightsError: nothing found; the message names the files and where to get them.
        WeightsLayoutError: a file does not have its checkpoint's keys and shapes.
    """
    name = _net_name(net)
    trunk_manifest, heads_manifest, model_manifest = lpips_manifests(name)
    metric = f"LPIPS ({name})"
    path = resolve_weights(weights, ENV_VAR, metric, [trunk_manifest, heads_manifest])
    if path.is_dir():
        trunk_file, heads_file = find_in_folder(
            path, metric, ENV_VAR, [trunk_manifest, heads_manifest]
        )
        trunk = check_layout(load_weights_file(trunk_file), trunk_manifest, str(trunk_file))
        heads = check_layout(load_weights_file(heads_file), heads_manifest, str(heads_file))
        state = _from_published(trunk, heads, name)
    else:
        state = _check_model_file(Path(path), model_manifest, trunk_manifest, heads_manifest)
    model = LPIPS(name)
    model.load_state_dict(state, strict=True)
    return model.eval().to(device or "cpu")


def _check_model_file(
    path: Path, model: Manifest, trunk: Manifest, heads: Manifest
) -> dict[str, torch.Tensor]:
    state = load_weights_file(path)
    try:
        return check_layout(state, model, str(path))
    except WeightsLayoutError as err:
        hint = (
            f"\nA single file must hold a whole lpips.LPIPS state dict; for the published "
            f"files pass the folder that holds {trunk.file_name} and {heads.file_name}."
        )
        raise WeightsLayoutError(str(err) + hint) from err
