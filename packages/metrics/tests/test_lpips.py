"""LPIPS loads the published file layouts (random values here) and behaves like a distance."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ditkit_metrics import compare
from ditkit_metrics.lpips import ENV_VAR, LPIPS, load_lpips
from ditkit_metrics.weights import MissingWeightsError, WeightsLayoutError


@pytest.fixture
def images(rng, helpers):
    x = rng.integers(0, 256, (2, 48, 40, 3), dtype=np.uint8)
    return x, helpers.noisy_copy(x, rng, 60)


def test_loads_from_argument_and_env_var(lpips_alex_dir, monkeypatch):
    by_argument = load_lpips("alex", lpips_alex_dir)
    assert not by_argument.training
    monkeypatch.setenv(ENV_VAR, str(lpips_alex_dir))
    by_env = load_lpips("alex")
    for (key, a), (_, b) in zip(
        by_argument.state_dict().items(), by_env.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), key
    trunk = torch.load(lpips_alex_dir / "alexnet-owt-7be5be79.pth")
    assert torch.equal(by_env.net.slice3.get_submodule("6").weight, trunk["features.6.weight"])
    heads = torch.load(lpips_alex_dir / "alex.pth")
    assert torch.equal(by_env.lins[4].model[1].weight, heads["lin4.model.1.weight"])
    assert torch.equal(by_env.scaling_layer.scale.flatten(), torch.tensor([0.458, 0.448, 0.450]))


def test_distance_properties(lpips_alex_dir, images):
    model = load_lpips("alex", lpips_alex_dir)
    x, y = (torch.from_numpy(a).permute(0, 3, 1, 2).float() / 255 for a in images)
    with torch.no_grad():
        d = model(x, y, normalize=True).flatten()
        assert d.shape == (2,) and (d > 0).all()  # the heads are >= 0, the images differ
        assert torch.allclose(d, model(y, x, normalize=True).flatten())
        assert model(x, x, normalize=True).abs().max() == 0
        # normalize=True is the [-1, 1] input of the same images
        assert torch.allclose(d, model(2 * x - 1, 2 * y - 1).flatten())
        closer = model(x, 0.9 * x + 0.1 * y, normalize=True).flatten()
    assert (closer < d).all()


def test_compute_lpips_on_files_matches_the_module(tmp_path, lpips_alex_dir, images, helpers):
    helpers.write_pngs(tmp_path / "a", images[0])
    helpers.write_pngs(tmp_path / "b", images[1])
    model = load_lpips("alex", lpips_alex_dir)
    value, n = compare.compute_lpips(tmp_path / "a", tmp_path / "b", weights=lpips_alex_dir)
    x, y = (torch.from_numpy(a).permute(0, 3, 1, 2).float() / 255 for a in images)
    with torch.no_grad():
        expected = model(x, y, normalize=True).mean().item()
    assert n == 2 and value == pytest.approx(expected, rel=1e-6)
    assert compare.compute_lpips(images[0][0], images[0][0], model=model) == (0.0, 1)
    helpers.write_pngs(tmp_path / "v1", images[0])
    helpers.write_pngs(tmp_path / "v2", images[1])
    video = compare.compute_video_lpips(tmp_path / "v1", tmp_path / "v2", model=model)
    assert video == (pytest.approx(expected, rel=1e-6), 2)


def test_vgg_from_a_whole_lpips_state_dict_file(tmp_path, images, helpers):
    reference = LPIPS("vgg")
    for p in reference.parameters():
        torch.nn.init.normal_(p, std=0.05)
    torch.save(reference.state_dict(), tmp_path / "lpips_vgg.pth")
    loaded = load_lpips("vgg16", tmp_path / "lpips_vgg.pth")
    x, y = (torch.from_numpy(a).permute(0, 3, 1, 2).float() / 255 for a in images)
    with torch.no_grad():
        assert torch.equal(loaded(x, y, normalize=True), reference.eval()(x, y, normalize=True))


def test_vgg_from_the_published_files(tmp_path, helpers, images):
    folder = helpers.write_lpips_folder(tmp_path / "vgg", "vgg")
    model = load_lpips("vgg", folder)
    x = torch.from_numpy(images[0]).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        assert torch.isfinite(model(x, x.flip(-1), normalize=True)).all()


def test_clear_errors(tmp_path, lpips_alex_dir, monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    with pytest.raises(MissingWeightsError) as info:
        load_lpips("alex")
    message = str(info.value)
    assert "alexnet-owt-7be5be79.pth" in message and "alex.pth" in message and ENV_VAR in message
    with pytest.raises(MissingWeightsError, match=r"vgg16-397923af\.pth"):
        load_lpips("vgg", lpips_alex_dir)  # the folder lacks the VGG files
    with pytest.raises(WeightsLayoutError, match="folder that holds alexnet-owt"):
        load_lpips("alex", lpips_alex_dir / "alex.pth")  # a heads file alone is not a whole model
    with pytest.raises(ValueError, match="one of"):
        LPIPS("squeeze")
    with pytest.raises(ValueError, match="at least 31x31"):
        LPIPS("alex")(torch.rand(1, 3, 30, 64), torch.rand(1, 3, 30, 64))
