"""The committed manifests match the networks; weight files are checked and found as promised."""

from __future__ import annotations

import json

import pytest
import torch

from ditkit_metrics.inception import FIDInceptionV3
from ditkit_metrics.lpips import LPIPS
from ditkit_metrics.weights import (
    MANIFEST_DIR,
    MissingWeightsError,
    WeightsLayoutError,
    check_layout,
    load_manifest,
    load_weights_file,
    random_state_dict,
    resolve_weights,
)


def _layout(module: torch.nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in module.state_dict().items()]


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_module_has_the_lpips_package_layout(net):
    assert _layout(LPIPS(net)) == list(load_manifest(f"lpips_{net}").shapes.items())


def test_inception_has_the_pytorch_fid_checkpoint_layout():
    manifest = load_manifest("pt_inception_2015_12_05")
    assert _layout(FIDInceptionV3()) == list(manifest.shapes.items())
    assert manifest.optional_suffixes == ("num_batches_tracked",)
    assert manifest.url.endswith("pt_inception-2015-12-05-6726825d.pth")


def test_trunk_manifests_match_torchvision_published_sizes():
    # torchvision's weight metadata: AlexNet 61,100,840 and VGG16 138,357,544 parameters
    assert load_manifest("torchvision_alexnet").num_params() == 61_100_840
    assert load_manifest("torchvision_vgg16").num_params() == 138_357_544
    heads = load_manifest("lpips_alex_heads").shapes
    assert list(heads.values()) == [(1, c, 1, 1) for c in (64, 192, 384, 256, 256)]


def test_every_manifest_records_its_size():
    for path in sorted(MANIFEST_DIR.glob("*.json")):
        data = json.loads(path.read_text())
        if "num_params" in data:  # ours; bare {key: shape} manifests have no header
            assert load_manifest(path.stem).num_params() == data["num_params"], path.name


def test_check_layout_lists_every_difference():
    manifest = load_manifest("lpips_alex_heads")
    state = random_state_dict(manifest.shapes)
    assert check_layout(state, manifest).keys() == manifest.shapes.keys()
    state.pop("lin0.model.1.weight")
    state["lin1.model.1.weight"] = torch.zeros(1, 5, 1, 1)
    state["extra"] = torch.zeros(1)
    with pytest.raises(WeightsLayoutError) as info:
        check_layout(state, manifest, "my.pth")
    message = str(info.value)
    assert "my.pth" in message and "alex.pth" in message
    assert "missing: lin0.model.1.weight" in message
    assert "unexpected: extra" in message
    assert "lin1.model.1.weight: (1, 5, 1, 1) (expected (1, 192, 1, 1))" in message


def test_optional_counters_are_filled():
    manifest = load_manifest("pt_inception_2015_12_05")
    state = {k: v for k, v in random_state_dict(manifest.shapes).items() if "num_batches" not in k}
    filled = check_layout(state, manifest)
    assert filled["Conv2d_1a_3x3.bn.num_batches_tracked"].dtype == torch.long
    FIDInceptionV3().load_state_dict(filled, strict=True)


def test_missing_weights_say_what_to_download(tmp_path, monkeypatch):
    manifests = [load_manifest("torchvision_alexnet"), load_manifest("lpips_alex_heads")]
    monkeypatch.delenv("DITKIT_TEST_WEIGHTS", raising=False)
    with pytest.raises(MissingWeightsError) as info:
        resolve_weights(None, "DITKIT_TEST_WEIGHTS", "LPIPS (alex)", manifests)
    message = str(info.value)
    assert "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth" in message
    assert "alex.pth" in message and "DITKIT_TEST_WEIGHTS=" in message
    assert isinstance(info.value, FileNotFoundError)
    monkeypatch.setenv("DITKIT_TEST_WEIGHTS", str(tmp_path / "absent"))
    with pytest.raises(MissingWeightsError, match=r"Looked for: .*absent"):
        resolve_weights(None, "DITKIT_TEST_WEIGHTS", "LPIPS (alex)", manifests)
    monkeypatch.setenv("DITKIT_TEST_WEIGHTS", str(tmp_path))
    assert resolve_weights(None, "DITKIT_TEST_WEIGHTS", "x", manifests) == tmp_path


def test_weights_files_load_from_pth_and_safetensors(tmp_path):
    from safetensors.torch import save_file

    state = {"a": torch.arange(3.0), "b": torch.ones(2, 2)}
    torch.save(state, tmp_path / "w.pth")
    save_file(state, str(tmp_path / "w.safetensors"))
    for name in ("w.pth", "w.safetensors"):
        loaded = load_weights_file(tmp_path / name)
        assert loaded.keys() == state.keys() and torch.equal(loaded["a"], state["a"])
    torch.save([1, 2], tmp_path / "list.pth")
    with pytest.raises(WeightsLayoutError, match="not a state dict"):
        load_weights_file(tmp_path / "list.pth")


def test_random_state_dict_is_deterministic_and_sane():
    shapes = {"c.weight": (8, 4, 3, 3), "bn.running_var": (8,), "bn.num_batches_tracked": ()}
    a, b = random_state_dict(shapes, seed=5), random_state_dict(shapes, seed=5)
    assert all(torch.equal(a[k], b[k]) for k in shapes)
    assert a["bn.running_var"].min() >= 0.5 and a["bn.num_batches_tracked"].item() == 0
    assert 0.1 < float(a["c.weight"].std()) < 0.25  # 1/sqrt(36)
