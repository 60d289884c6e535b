"""Backbones: declared levels match the tensors, sizes, routes and weight loading."""

import pytest
import timm
import torch
from safetensors.torch import save_file
from timm.models.vision_transformer import VisionTransformer

from bridgenet_cli.errors import BridgeNetError
from bridgenet_cli.models.backbones import BACKBONES, BackboneArgs, build_backbone

# Ours (InternImage is tested in test_internimage.py); ViTs with two blocks.
LIGHT = ["vit-tiny", "vit-small", "hrnet-w18", "resnet50d", "timm:resnet18"]
HEAVY = ["vit-base", "vit-large", "hrnet-w48"]


def build(name: str, size=(64, 96), depth: int = 2, **kwargs):
    extra = (("depth", depth),) if name.startswith("vit") else ()
    return build_backbone(name, BackboneArgs(img_size=size, extra=extra, **kwargs))


def check_levels(name: str) -> None:
    model = build(name).eval()
    with torch.no_grad():
        features = model(torch.randn(1, 3, 64, 96))
    assert len(features) == len(model.levels)
    for level, feature in zip(model.levels, features, strict=True):
        assert feature.shape == (1, level.channels, 64 // level.stride, 96 // level.stride)


@pytest.mark.parametrize("name", LIGHT)
def test_declared_levels_match_tensors(name):
    check_levels(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", HEAVY)
def test_declared_levels_match_tensors_heavy(name):
    check_levels(name)


def test_every_registered_backbone_is_covered():
    ours = {n for n in BACKBONES.names() if not n.startswith("internimage")}
    assert ours == set(LIGHT + HEAVY) - {"timm:resnet18"}


def test_level_layouts():
    with torch.device("meta"):  # structure only: no memory, no initialisation cost
        vit, hrnet, resnet = build("vit-tiny"), build("hrnet-w18"), build("resnet50d")
    assert [lv.stride for lv in vit.levels] == [16, 16, 16]
    assert [(lv.channels, lv.stride) for lv in hrnet.levels] == [
        (18, 4),
        (36, 8),
        (72, 16),
        (144, 32),
    ]
    assert hrnet.decoder_levels == 4 and hrnet.needs_all_levels
    assert [(lv.channels, lv.stride) for lv in resnet.levels] == [(512, 8), (1024, 8), (2048, 8)]


def test_vit_taps_half_and_three_quarters_of_the_depth():
    with torch.device("meta"):
        assert build("vit-base", depth=0).tap_blocks == (5, 8)  # blocks 6 and 9
        assert build("vit-large", depth=0).tap_blocks == (11, 17)  # blocks 12 and 18
        assert build("vit-tiny", depth=2).tap_blocks == (0, 1)


def test_vit_runs_at_other_sizes_than_built():
    model = build("vit-tiny", size=(64, 64)).eval()
    with torch.no_grad():
        features = model(torch.randn(2, 3, 48, 80))
    assert [f.shape for f in features] == [(2, 192, 3, 5)] * 3


def test_vit_rejects_sizes_off_the_patch_grid():
    with pytest.raises(BridgeNetError, match="not a multiple of 16"):
        build("vit-tiny", size=(60, 64))
    model = build("vit-tiny", size=(64, 64))
    with pytest.raises(BridgeNetError, match="50x64 is not a multiple of 16"):
        model(torch.randn(1, 3, 50, 64))


def test_unknown_name_lists_registered_ones_and_the_timm_route():
    with pytest.raises(BridgeNetError, match="vit-base") as info:
        build("vit-bse")
    assert "did you mean 'vit-base'" in str(info.value)
    assert "timm:<model name>" in str(info.value)


def test_unknown_timm_name_suggests_close_names():
    with pytest.raises(BridgeNetError, match="resnet18") as info:
        build("timm:resnet18x")
    assert "timm.list_models" in str(info.value)


def test_depth_option_is_vit_only():
    with pytest.raises(BridgeNetError, match="only applies to ViT"):
        build_backbone("resnet50d", BackboneArgs(img_size=(64, 64), extra=(("depth", 2),)))


# ---------------------------------------------------------------------------------------------
# Weights


def timm_vit(depth: int = 2) -> VisionTransformer:
    """A classification ViT-tiny as timm saves it: 224x224 position embeddings, a head."""
    return VisionTransformer(img_size=224, embed_dim=192, depth=depth, num_heads=3)


def test_vit_loads_a_timm_state_dict_and_resizes_position_embeddings(tmp_path):
    source = timm_vit()
    path = tmp_path / "vit.pth"
    torch.save({"model": source.state_dict()}, path)

    model = build("vit-tiny", size=(64, 64), pretrained=str(path))

    assert model.vit.pos_embed.shape == (1, 1 + 16, 192)
    torch.testing.assert_close(model.vit.blocks[1].mlp.fc2.weight, source.blocks[1].mlp.fc2.weight)
    torch.testing.assert_close(model.vit.cls_token, source.cls_token)


def test_safetensors_are_read(tmp_path):
    source = timm_vit()
    path = tmp_path / "vit.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))
    model = build("vit-tiny", size=(64, 64), pretrained=str(path))
    torch.testing.assert_close(model.vit.patch_embed.proj.weight, source.patch_embed.proj.weight)


def test_missing_weights_file_is_a_clear_error(tmp_path):
    with pytest.raises(BridgeNetError, match="weights file not found") as info:
        build("vit-tiny", pretrained=str(tmp_path / "nope.pth"))
    assert "nothing is downloaded" in str(info.value)


def test_mismatched_weights_count_missing_and_unexpected_keys(tmp_path):
    path = tmp_path / "deeper.pth"
    torch.save(timm_vit(depth=3).state_dict(), path)  # one block more than the model
    with pytest.raises(BridgeNetError, match=r"0 missing, \d+ unexpected, 0 with a wrong shape"):
        build("vit-tiny", pretrained=str(path))

    torch.save(timm_vit(depth=2).state_dict(), path)
    with pytest.raises(BridgeNetError, match=r"\d+ missing, 0 unexpected"):
        build("vit-tiny", depth=3, pretrained=str(path))


def test_wrong_shapes_are_counted(tmp_path):
    path = tmp_path / "small.pth"
    torch.save(
        VisionTransformer(img_size=224, embed_dim=96, depth=2, num_heads=3).state_dict(), path
    )
    with pytest.raises(BridgeNetError, match=r"[1-9]\d* with a wrong shape"):
        build("vit-tiny", pretrained=str(path))


def test_timm_feature_backbone_loads_a_classification_checkpoint(tmp_path):
    source = timm.create_model("resnet18", pretrained=False)
    path = tmp_path / "resnet18.pth"
    torch.save(source.state_dict(), path)  # with the fc classifier, which is dropped

    model = build("timm:resnet18", pretrained=str(path))

    loaded = dict(model.weights_module().named_parameters())
    weight = next(v for k, v in loaded.items() if k.endswith("layer4.1.conv2.weight"))
    torch.testing.assert_close(weight, source.layer4[1].conv2.weight)


def test_a_file_that_is_no_state_dict_is_refused(tmp_path):
    path = tmp_path / "junk.pth"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(BridgeNetError, match="cannot read weights"):
        build("resnet50d", pretrained=str(path))
