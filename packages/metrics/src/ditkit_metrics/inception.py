"""The InceptionV3 of FID (pytorch-fid's ``pt_inception-2015-12-05`` port), in plain torch.

This is the TensorFlow 2015-12-05 Inception graph that FID is defined on, with torchvision's module
names so its published checkpoint, ``pt_inception-2015-12-05-6726825d.pth`` (pytorch-fid's
release), loads with ``strict=True``. It differs from torchvision's ImageNet InceptionV3 in three
places, as pytorch-fid's port does: 1008 classes, average pools inside the A, C and first E
blocks that leave the zero padding out of the mean, and a max pool in the last E block.

``features(x, dims)`` takes ``[N, 3, H, W]`` images in [0, 1], resizes them bilinearly to 299x299,
scales to [-1, 1] and returns ``[N, dims]``: the pool features of block 0 (64), 1 (192),
2 (768, before the auxiliary classifier) or 3 (2048, the final average pool; FID's default).

Example:
    >>> import torch
    >>> from ditkit_metrics.inception import FIDInceptionV3
    >>> model = FIDInceptionV3().eval()  # random weights here; load_fid_inception() for real ones
    >>> model.features(torch.rand(1, 3, 80, 80), dims=64).shape
    torch.Size([1, 64])
"""

from __future__ import annotations

import os

import torch
from torch import nn
from torch.nn import functional

from .weights import (
    check_layout,
    find_in_folder,
    load_manifest,
    load_weights_file,
    resolve_weights,
)

__all__ = ["DIMS", "ENV_VAR", "FIDInceptionV3", "load_fid_inception"]

ENV_VAR = "DITKIT_FID_WEIGHTS"
MANIFEST = "pt_inception_2015_12_05"
DIMS = (64, 192, 768, 2048)


class BasicConv2d(nn.Module):
    """Convolution without bias, BatchNorm (eps 1e-3), ReLU."""

    def __init__(self, cin: int, cout: int, kernel, stride=1, padding=0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return functional.relu(self.bn(self.conv(x)))


def _same_avg_pool(x: torch.Tensor, kernel: int = 3, stride: int = 1, padding: int = 1):
    """TensorFlow's same-padded average pool: padded zeros are not counted in the mean."""
    return functional.avg_pool2d(x, kernel, stride=stride, padding=padding, count_include_pad=False)


class InceptionA(nn.Module):
    def __init__(self, cin: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64, 1)
        self.branch5x5_1 = BasicConv2d(cin, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        pool = self.branch_pool(_same_avg_pool(x))
        return torch.cat([self.branch1x1(x), b5, b3, pool], 1)


class InceptionB(nn.Module):
    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), b3, functional.max_pool2d(x, 3, stride=2)], 1)


class InceptionC(nn.Module):
    def __init__(self, cin: int, c7: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 192, 1)
        self.branch7x7_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d7 = self.branch7x7dbl_3(self.branch7x7dbl_2(self.branch7x7dbl_1(x)))
        d7 = self.branch7x7dbl_5(self.branch7x7dbl_4(d7))
        pool = self.branch_pool(_same_avg_pool(x))
        return torch.cat([self.branch1x1(x), b7, d7, pool], 1)


class InceptionD(nn.Module):
    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_2(self.branch7x7x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(b7))
        return torch.cat([b3, b7, functional.max_pool2d(x, 3, stride=2)], 1)


class InceptionE(nn.Module):
    """The E block; ``max_pool=True`` is the FID graph's last block (a max pool branch)."""

    def __init__(self, cin: int, max_pool: bool) -> None:
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(cin, 320, 1)
        self.branch3x3_1 = BasicConv2d(cin, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        d3 = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        d3 = torch.cat([self.branch3x3dbl_3a(d3), self.branch3x3dbl_3b(d3)], 1)
        pool = functional.max_pool2d if self.max_pool else _same_avg_pool
        pooled = pool(x, 3, stride=1, padding=1)
        return torch.cat([self.branch1x1(x), b3, d3, self.branch_pool(pooled)], 1)


class FIDInceptionV3(nn.Module):
    """The FID Inception graph with the checkpoint's module names (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, c7=128)
        self.Mixed_6c = InceptionC(768, c7=160)
        self.Mixed_6d = InceptionC(768, c7=160)
        self.Mixed_6e = InceptionC(768, c7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, max_pool=False)
        self.Mixed_7c = InceptionE(2048, max_pool=True)
        self.fc = nn.Linear(2048, 1008)  # in the checkpoint; FID does not use the logits
        self.requires_grad_(False)

    def _stages(self) -> list[list[nn.Module]]:
        return [
            [self.Conv2d_1a_3x3, self.Conv2d_2a_3x3, self.Conv2d_2b_3x3],
            [self.Conv2d_3b_1x1, self.Conv2d_4a_3x3],
            [
                *(self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a),
                *(self.Mixed_6b, self.Mixed_6c, self.Mixed_6d, self.Mixed_6e),
            ],
            [self.Mixed_7a, self.Mixed_7b, self.Mixed_7c],
        ]

    def features(self, images: torch.Tensor, dims: int = 2048, resize: bool = True) -> torch.Tensor:
        """Pool features ``[N, dims]`` of ``[N, 3, H, W]`` images in [0, 1]."""
        if dims not in DIMS:
            raise ValueError(f"dims must be one of {DIMS}, got {dims}")
        x = images
        if resize:
            x = functional.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        x = 2 * x - 1
        last = DIMS.index(dims)
        for index, stage in enumerate(self._stages()[: last + 1]):
            for layer in stage:
                x = layer(x)
            if index < 2:  # the two max pools that end blocks 0 and 1
                x = functional.max_pool2d(x, 3, stride=2)
        return functional.adaptive_avg_pool2d(x, 1).flatten(1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """The 2048-d pool features (FID's default), as :meth:`features`."""
        return self.features(images)


def load_fid_inception(
    weights: str | os.PathLike | None = None, device: torch.device | str | None = None
) -> FIDInceptionV3:
    """Build :class:`FIDInceptionV3` and load ``pt_inception-2015-12-05-6726825d.pth`` (strict).

    Args:
        weights: the checkpoint file, or a folder holding it; defaults to ``$DITKIT_FID_WEIGHTS``.
        device: where to put the model (default CPU).

    Raises:
        MissingWeightsError: nothing found; the message names the file and where to get it.
        WeightsLayoutError: the file does not have the checkpoint's keys and shapes.
    """
    manifest = load_manifest(MANIFEST)
    path = resolve_weights(weights, ENV_VAR, "FID (InceptionV3)", [manifest])
    if path.is_dir():
        (path,) = find_in_folder(path, "FID (InceptionV3)", ENV_VAR, [manifest])
    state = check_layout(load_weights_file(path), manifest, str(path))
    model = FIDInceptionV3()
    model.load_state_dict(state, strict=True)
    return model.eval().to(device or "cpu")
