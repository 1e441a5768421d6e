"""Cross-check ditkit-metrics against the reference libraries (run where torchvision imports).

    python tools/metrics/crosscheck_reference.py [--device cuda] [--seed 0]
    python tools/metrics/crosscheck_reference.py --write-manifests DIR   # regenerate manifests

Needs torchvision, lpips==0.1.4, pytorch-fid and scikit-image beside ditkit-metrics, and no
network: the reference networks are built with random weights (pytorch-fid's download is replaced
by the same random state dict), the real LPIPS heads come from the lpips wheel itself.

Checks, each a row of the final table:
- layout: the reference state dicts (torchvision AlexNet/VGG16, lpips.LPIPS, the lpips heads files,
  pytorch-fid's FID Inception) have exactly the keys, order and shapes of the committed manifests;
- LPIPS alex/vgg: one random state dict loaded into both nets, distances on random images; and the
  published-files path: a torchvision trunk file plus the lpips wheel's real heads file loaded by
  ``load_lpips(folder)`` against ``lpips.LPIPS(pretrained=True)`` on the same trunk;
- FID Inception: features of blocks 64/192/768/2048 with the same random weights, and the FID of
  two PNG folders against ``pytorch_fid.fid_score.calculate_fid_given_paths``;
- PSNR/SSIM/MSE against scikit-image on random images.
Exit status 0 when every check passes, 1 when one fails, 2 when a reference library is missing.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import math
import shutil
import sys
import tempfile
import traceback
from pathlib import Path

import numpy as np
import torch

from ditkit_metrics import compare, io
from ditkit_metrics.fid import FrechetInceptionDistance
from ditkit_metrics.inception import load_fid_inception
from ditkit_metrics.lpips import LPIPS, load_lpips
from ditkit_metrics.pixel import mse, psnr, ssim
from ditkit_metrics.weights import MANIFEST_DIR, load_manifest, random_state_dict

REFERENCES = ("torchvision", "lpips", "pytorch_fid", "skimage")
Row = tuple[str, str, float, float]  # check, detail, value, tolerance (ok when value <= tol)


def _layout(state: dict) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in state.items()]


def _layout_row(name: str, manifest: str, state: dict) -> Row:
    expected = list(load_manifest(manifest).shapes.items())
    got = _layout(state)
    if got == expected:
        return (f"layout {name}", f"{len(got)} keys == {manifest}.json", 0.0, 0.0)
    missing = sorted(set(expected) - set(got))[:3]
    extra = sorted(set(got) - set(expected))[:3]
    detail = f"differs from {manifest}.json: missing {missing} extra {extra}"
    return (f"layout {name}", detail, 1.0, 0.0)


def _fid_reference_inception(state: dict):
    """pytorch-fid's fid_inception_v3() with its download replaced by ``state``."""
    import pytorch_fid.inception as pfi

    pfi.load_state_dict_from_url = lambda *args, **kwargs: state
    return pfi


def _lpips_heads_file(net: str) -> Path:
    import lpips

    return Path(lpips.__file__).parent / "weights" / "v0.1" / f"{net}.pth"


def check_layouts(seed: int) -> list[Row]:
    import lpips
    from torchvision import models as tv

    rows = [
        _layout_row("torchvision alexnet", "torchvision_alexnet", tv.alexnet().state_dict()),
        _layout_row("torchvision vgg16", "torchvision_vgg16", tv.vgg16().state_dict()),
    ]
    for net in ("alex", "vgg"):
        heads = torch.load(_lpips_heads_file(net), map_location="cpu", weights_only=True)
        rows.append(_layout_row(f"lpips heads {net}.pth", f"lpips_{net}_heads", heads))
        ref = lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False)
        rows.append(_layout_row(f"lpips.LPIPS({net})", f"lpips_{net}", ref.state_dict()))
    manifest = load_manifest("pt_inception_2015_12_05")
    pfi = _fid_reference_inception(random_state_dict(manifest.shapes, seed=seed))
    inception = pfi.fid_inception_v3()  # loads the state dict with strict=True itself
    rows.append(_layout_row("pytorch-fid inception", manifest.name, inception.state_dict()))
    return rows


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double().cpu() - b.double().cpu()).abs().max())


@torch.no_grad()
def check_lpips(device: str, seed: int) -> list[Row]:
    import lpips
    from torchvision import models as tv

    rows = []
    generator = torch.Generator().manual_seed(seed)
    inputs = [
        torch.rand(2, 3, 64, 64, generator=generator),
        torch.rand(1, 3, 70, 90, generator=generator),
    ]
    for net in ("alex", "vgg"):
        ref = lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False).eval()
        buffers = {k: v for k, v in ref.state_dict().items() if k.startswith("scaling_layer.")}
        state = random_state_dict(load_manifest(f"lpips_{net}").shapes, seed, overrides=buffers)
        ref.load_state_dict(state, strict=True)
        ours = LPIPS(net).eval()
        ours.load_state_dict(state, strict=True)
        ref, ours = ref.to(device), ours.to(device)
        for x in inputs:
            y = x.flip(-1)
            a = ours(x.to(device), y.to(device), normalize=True)
            b = ref(x.to(device), y.to(device), normalize=True)
            rows.append(
                (
                    f"LPIPS {net} random",
                    f"{tuple(x.shape)} |d|~{float(b.abs().mean()):.3g}",
                    _max_diff(a, b),
                    1e-5,
                )
            )
        # the published files: a torchvision trunk file and the real heads file of the wheel
        torch.manual_seed(seed)
        trunk = (tv.alexnet if net == "alex" else tv.vgg16)().eval()
        constructor = "alexnet" if net == "alex" else "vgg16"
        original = getattr(lpips.pretrained_networks.tv, constructor)
        setattr(lpips.pretrained_networks.tv, constructor, lambda *a, _t=trunk, **k: _t)
        try:
            ref = lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False).eval()
        finally:
            setattr(lpips.pretrained_networks.tv, constructor, original)
        with tempfile.TemporaryDirectory() as folder:
            names = load_manifest(f"torchvision_{'alexnet' if net == 'alex' else 'vgg16'}")
            torch.save(trunk.state_dict(), Path(folder) / names.file_name)
            shutil.copy(_lpips_heads_file(net), Path(folder) / f"{net}.pth")
            ours = load_lpips(net, folder, device=device)
        ref = ref.to(device)
        x = inputs[0].to(device)
        a, b = ours(x, x.flip(-1), normalize=True), ref(x, x.flip(-1), normalize=True)
        detail = f"torchvision trunk file + real {net}.pth heads, |d|~{float(b.abs().mean()):.3g}"
        rows.append((f"LPIPS {net} published", detail, _max_diff(a, b), 1e-5))
    return rows


@torch.no_grad()
def check_fid(device: str, seed: int, folder: Path) -> list[Row]:
    from pytorch_fid.fid_score import calculate_fid_given_paths

    manifest = load_manifest("pt_inception_2015_12_05")
    state = random_state_dict(manifest.shapes, seed=seed)
    pfi = _fid_reference_inception(state)
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / manifest.file_name
    torch.save(state, weights)
    ours = load_fid_inception(weights, device=device)
    x = torch.rand(3, 3, 96, 80, generator=torch.Generator().manual_seed(seed)).to(device)
    rows = []
    for dims, block in pfi.InceptionV3.BLOCK_INDEX_BY_DIM.items():
        ref = pfi.InceptionV3([block]).to(device).eval()
        expected = torch.nn.functional.adaptive_avg_pool2d(ref(x)[0], 1).flatten(1)
        got = ours.features(x, dims)
        detail = f"features {dims}, |f|~{float(expected.abs().mean()):.3g}"
        rows.append(("FID inception", detail, _max_diff(got, expected), 1e-4))
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (12, 64, 64, 3), dtype=np.uint8)
    shifted = np.clip(images.astype(int) + rng.integers(-60, 61, images.shape), 0, 255).astype(
        np.uint8
    )
    for name, data in (("a", images), ("b", shifted)):
        for i, image in enumerate(data):
            io.save_image(image, folder / name / f"{i}.png")
    paths = [str(folder / "a"), str(folder / "b")]
    _shim_old_sqrtm()
    expected = calculate_fid_given_paths(paths, 4, device, 192, num_workers=0)
    metric = FrechetInceptionDistance(device, dims=192, batch_size=4, model=ours)
    got, _ = metric.compute_fid(*paths)
    detail = f"FID 192 of 12 PNGs: {got:.6g} vs pytorch-fid {expected:.6g} (relative)"
    rows.append(("FID folders", detail, abs(got - expected) / max(abs(expected), 1e-12), 1e-4))
    return rows


def _shim_old_sqrtm() -> None:
    """pytorch-fid 0.3.0 calls ``sqrtm(A, disp=False)``, which newer scipy removed: give it a
    ``linalg`` whose ``sqrtm`` takes ``disp`` (returning ``(root, 0.0)`` as the old one did)."""
    import inspect
    import types

    import pytorch_fid.fid_score as fid_score
    from scipy import linalg

    if "disp" in inspect.signature(linalg.sqrtm).parameters:
        return

    def sqrtm(matrix, disp=True):
        root = linalg.sqrtm(matrix)
        return root if disp else (root, 0.0)

    fid_score.linalg = types.SimpleNamespace(sqrtm=sqrtm)


def check_pixels(seed: int, folder: Path) -> list[Row]:
    from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (61, 47, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-40, 41, a.shape), 0, 255).astype(np.uint8)
    rows = [
        (
            "SSIM",
            "uint8 RGB, 7x7 uniform",
            abs(ssim(a, b) - structural_similarity(a, b, channel_axis=2)),
            1e-10,
        ),
        (
            "SSIM",
            "gaussian_weights=True",
            abs(
                ssim(a, b, gaussian_weights=True)
                - structural_similarity(a, b, channel_axis=2, gaussian_weights=True)
            ),
            1e-10,
        ),
        ("PSNR", "uint8 RGB", abs(psnr(a, b) - peak_signal_noise_ratio(a, b)), 1e-10),
        ("MSE", "uint8 RGB", abs(mse(a, b) - mean_squared_error(a, b)), 1e-8),
    ]
    io.save_image(a, folder / "p" / "x.png")
    io.save_image(b, folder / "q" / "x.png")
    got, _ = compare.compute_ssim(folder / "p", folder / "q")
    rows.append(
        ("SSIM", "PNG folders", abs(got - structural_similarity(a, b, channel_axis=2)), 1e-10)
    )
    return rows


def write_manifests(target: Path, seed: int) -> None:
    """Regenerate the committed manifests from the reference definitions."""
    import lpips
    from torchvision import models as tv

    def dump(name: str, state: dict, **header) -> None:
        shapes = {k: list(v.shape) for k, v in state.items()}
        header["num_params"] = sum(math.prod(s) for s in shapes.values())
        text = json.dumps(header, indent=2)[:-2]
        rows = ",\n".join(f"    {json.dumps(k)}: {json.dumps(v)}" for k, v in shapes.items())
        (target / f"{name}.json").write_text(text + ',\n  "shapes": {\n' + rows + "\n  }\n}\n")
        print(f"wrote {name}.json: {len(shapes)} tensors, {header['num_params']} elements")

    target.mkdir(parents=True, exist_ok=True)
    for manifest, state in (
        ("torchvision_alexnet", tv.alexnet().state_dict()),
        ("torchvision_vgg16", tv.vgg16().state_dict()),
    ):
        dump(manifest, state, **_header(manifest))
    for net in ("alex", "vgg"):
        heads = torch.load(_lpips_heads_file(net), map_location="cpu", weights_only=True)
        dump(f"lpips_{net}_heads", heads, **_header(f"lpips_{net}_heads"))
        ref = lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False)
        dump(f"lpips_{net}", ref.state_dict(), **_header(f"lpips_{net}"))
    manifest = load_manifest("pt_inception_2015_12_05")
    pfi = _fid_reference_inception(random_state_dict(manifest.shapes, seed=seed))
    dump(manifest.name, pfi.fid_inception_v3().state_dict(), **_header(manifest.name))


def _header(name: str) -> dict:
    """The committed manifest's header fields (everything but the shapes)."""
    data = json.loads((MANIFEST_DIR / f"{name}.json").read_text())
    return {k: v for k, v in data.items() if k not in ("shapes", "num_params")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write-manifests", type=Path, help="regenerate the manifests into DIR")
    args = parser.parse_args(argv)
    missing = [name for name in REFERENCES if importlib.util.find_spec(name) is None]
    if missing:
        print(f"missing reference libraries: {', '.join(missing)} (pip install them first)")
        return 2
    if args.write_manifests:
        write_manifests(args.write_manifests, args.seed)
        return 0
    import lpips  # noqa: F401
    import torchvision

    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, device {args.device}")
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        sections = [
            ("layouts", lambda: check_layouts(args.seed)),
            ("LPIPS", lambda: check_lpips(args.device, args.seed)),
            ("FID", lambda: check_fid(args.device, args.seed, Path(tmp) / "fid")),
            ("pixels", lambda: check_pixels(args.seed, Path(tmp) / "pixels")),
        ]
        for name, section in sections:
            try:
                rows += section()
            except Exception as error:  # one broken section must not hide the others
                traceback.print_exc()
                rows.append((f"{name} section", f"raised {type(error).__name__}", math.inf, 0.0))
    print("\n| check | detail | max abs diff | tolerance | ok |\n|---|---|---|---|---|")
    for check, detail, value, tol in rows:
        ok = math.isfinite(value) and value <= tol
        print(f"| {check} | {detail} | {value:.3g} | {tol:.0e} | {'yes' if ok else 'NO'} |")
    failed = sum(not (math.isfinite(v) and v <= t) for _, _, v, t in rows)
    print(f"\n{len(rows) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
