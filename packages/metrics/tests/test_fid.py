"""FID: the Fréchet distance formula, and Inception features from the published file layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ditkit_metrics.fid import (
    FrechetInceptionDistance,
    activation_statistics,
    compute_fid,
    compute_video_fid,
    frechet_distance,
)
from ditkit_metrics.inception import ENV_VAR, load_fid_inception
from ditkit_metrics.weights import MissingWeightsError

# few images and many features make singular covariances; scipy says so, as with pytorch-fid
pytestmark = pytest.mark.filterwarnings("ignore:Matrix is singular:scipy.linalg.LinAlgWarning")


def _spd(rng, d):
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def test_frechet_distance_closed_forms(rng):
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    v1, v2 = rng.uniform(0.5, 2, 5), rng.uniform(0.5, 2, 5)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2)
    got = frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2))
    assert got == pytest.approx(expected, abs=1e-10)
    s1, s2 = _spd(rng, 6), _spd(rng, 6)
    assert frechet_distance(mu1[:1].repeat(6), s1, mu1[:1].repeat(6), s1) == pytest.approx(
        0.0, abs=1e-9
    )
    # Tr sqrt(S1 S2) is the sum of the square roots of the (positive) eigenvalues of S1 S2
    roots = np.sqrt(np.linalg.eigvals(s1 @ s2).real).sum()
    expected = np.trace(s1) + np.trace(s2) - 2 * roots
    assert frechet_distance(np.zeros(6), s1, np.zeros(6), s2) == pytest.approx(expected, rel=1e-9)
    with pytest.raises(ValueError, match="differ in size"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


def test_statistics_need_two_samples():
    mu, sigma = activation_statistics(np.array([[0.0, 1.0], [2.0, 3.0]]))
    assert mu.tolist() == [1.0, 2.0] and sigma.tolist() == [[2.0, 2.0], [2.0, 2.0]]
    with pytest.raises(ValueError, match="at least 2 images"):
        activation_statistics(np.zeros((1, 4)))


def test_fid_of_folders_with_published_layout(tmp_path, rng, helpers, fid_weights):
    images = rng.integers(0, 256, (4, 40, 32, 3), dtype=np.uint8)
    other = helpers.noisy_copy(images, rng, 120)
    helpers.write_pngs(tmp_path / "a", images)
    helpers.write_pngs(tmp_path / "b", other)
    metric = FrechetInceptionDistance("cpu", dims=64, batch_size=3, weights=fid_weights)
    same, n = metric.compute_fid(str(tmp_path / "a"), str(tmp_path / "a"))
    assert n == 4 and abs(same) < 1e-6
    value, n = metric.compute_fid(tmp_path / "a", tmp_path / "b")
    model = load_fid_inception(fid_weights)
    with torch.no_grad():
        feats = [
            model.features(torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255, 64).double()
            for x in (images, other)
        ]
    stats = [activation_statistics(f.numpy()) for f in feats]
    assert value > 0 and value == pytest.approx(frechet_distance(*stats[0], *stats[1]), rel=1e-5)
    tensor_value, _ = metric.compute_fid(
        *(torch.from_numpy(x).permute(0, 3, 1, 2) for x in (images, other))
    )
    assert tensor_value == pytest.approx(value, rel=1e-5)


def test_fid_function_env_var_and_video(tmp_path, rng, helpers, fid_weights, monkeypatch):
    frames = rng.integers(0, 256, (3, 24, 24, 3), dtype=np.uint8)
    helpers.write_pngs(tmp_path / "v1", frames)
    helpers.write_pngs(tmp_path / "v2", helpers.noisy_copy(frames, rng, 50))
    monkeypatch.setenv(ENV_VAR, str(fid_weights.parent))  # a folder holding the file
    video, n = compute_video_fid(tmp_path / "v1", tmp_path / "v2", dims=192, device="cpu")
    images, m = compute_fid(tmp_path / "v1", tmp_path / "v2", dims=192, device="cpu")
    assert n == m == 3 and video == pytest.approx(images, rel=1e-9) and video > 0


def test_full_2048_features_of_mixed_sizes(rng, fid_weights):
    metric = FrechetInceptionDistance("cpu", weights=fid_weights, batch_size=2)
    arrays = [rng.integers(0, 256, (h, 30, 3), dtype=np.uint8) for h in (30, 50, 70)]
    feats = metric.features(arrays)
    assert feats.shape == (3, 2048) and feats.dtype == np.float64 and np.isfinite(feats).all()
    single = metric.features(arrays[1:2])
    assert np.allclose(single[0], feats[1], atol=1e-5)


def test_missing_fid_weights_name_the_file(monkeypatch, tmp_path):
    monkeypatch.delenv(ENV_VAR, raising=False)
    with pytest.raises(MissingWeightsError) as info:
        load_fid_inception()
    assert "pt_inception-2015-12-05-6726825d.pth" in str(info.value)
    assert "github.com/mseitzer/pytorch-fid" in str(info.value) and ENV_VAR in str(info.value)
    with pytest.raises(MissingWeightsError, match="Looked for"):
        load_fid_inception(tmp_path)  # an empty folder
    with pytest.raises(ValueError, match="dims"):
        FrechetInceptionDistance("cpu", dims=100, weights=tmp_path)
