"""InternImage and its pure-PyTorch DCNv3 operator, at tiny sizes."""

import math

import pytest
import torch

from bridgenet_cli.errors import BridgeNetError
from bridgenet_cli.models import build_model
from bridgenet_cli.models.backbones import BACKBONES, BackboneArgs
from bridgenet_cli.models.backbones import dcnv3 as dcnv3_module
from bridgenet_cli.models.backbones.dcnv3 import (
    DCNv3,
    dcnv3_compiled,
    dcnv3_pytorch,
    load_compiled_dcnv3,
    output_size,
)
from bridgenet_cli.models.backbones.internimage import (
    INTERNIMAGE_SIZES,
    build_internimage,
    classification_parameter_count,
)
from tests.models.tiny import NYUD_TASKS
from tests.models.tiny import tiny as tiny_model

# ---------------------------------------------------------------------------------------------
# Slow reference: one sampling point at a time, bilinear interpolation written out.


def reference_dcnv3(value, offset, mask, groups, kernel_size, stride, pad, dilation, scale):
    """Loops over batch, output pixel, group and kernel point; value (B, H, W, C) channels-last.

    Point p of a group is kernel column p // kernel_size and kernel row p % kernel_size; its
    location is the kernel centre plus (kernel displacement + learned offset) * scale.
    """
    B, H, W, C = value.shape
    _, H_out, W_out, _ = offset.shape
    per_group = C // groups
    points = kernel_size * kernel_size
    half = dilation * (kernel_size - 1) // 2
    rows = []
    for b in range(B):
        for oy in range(H_out):
            for ox in range(W_out):
                pixel = []
                for g in range(groups):
                    channels = slice(g * per_group, (g + 1) * per_group)
                    total = value.new_zeros(per_group)
                    for p in range(points):
                        column, row = divmod(p, kernel_size)
                        index = (g * points + p) * 2
                        dx, dy = offset[b, oy, ox, index], offset[b, oy, ox, index + 1]
                        x = ox * stride - pad + half + (column * dilation - half + dx) * scale
                        y = oy * stride - pad + half + (row * dilation - half + dy) * scale
                        sample = bilinear(value[b, :, :, channels], x, y)
                        total = total + mask[b, oy, ox, g * points + p] * sample
                    pixel.append(total)
                rows.append(torch.cat(pixel))
    return torch.stack(rows).view(B, H_out, W_out, C)


def bilinear(image, x, y):
    """Value of ``image (H, W, C)`` at pixel coordinates (x, y); zero outside the image."""
    H, W, C = image.shape
    x0, y0 = math.floor(x.item()), math.floor(y.item())
    fx, fy = x - x0, y - y0
    result = image.new_zeros(C)
    for cx, cy, weight in (
        (x0, y0, (1 - fx) * (1 - fy)),
        (x0 + 1, y0, fx * (1 - fy)),
        (x0, y0 + 1, (1 - fx) * fy),
        (x0 + 1, y0 + 1, fx * fy),
    ):
        if 0 <= cx < W and 0 <= cy < H:
            result = result + weight * image[cy, cx]
    return result


def random_inputs(B, H, W, groups, per_group, kernel_size, stride, pad, dilation, seed=0):
    generator = torch.Generator().manual_seed(seed)
    H_out = output_size(H, kernel_size, stride, pad, dilation)
    W_out = output_size(W, kernel_size, stride, pad, dilation)
    points = kernel_size * kernel_size
    value = torch.randn(B, H, W, groups * per_group, generator=generator, dtype=torch.float64)
    offset = 1.5 * torch.randn(B, H_out, W_out, groups * points * 2, generator=generator)
    logits = torch.randn(B, H_out, W_out, groups, points, generator=generator)
    mask = logits.softmax(-1).view(B, H_out, W_out, -1)
    return value, offset.double(), mask.double()


GEOMETRIES = [  # stride, pad, dilation, offset_scale
    (1, 1, 1, 1.0),
    (2, 1, 1, 1.0),
    (1, 2, 2, 2.0),
    (1, 0, 1, 0.5),
]


@pytest.mark.parametrize("stride,pad,dilation,scale", GEOMETRIES)
def test_dcnv3_matches_reference_values_and_gradients(stride, pad, dilation, scale):
    groups, kernel = 2, 3
    inputs = random_inputs(2, 5, 6, groups, 2, kernel, stride, pad, dilation)
    fast_inputs = [t.clone().requires_grad_() for t in inputs]
    slow_inputs = [t.clone().requires_grad_() for t in inputs]

    fast = dcnv3_pytorch(*fast_inputs, groups, kernel, stride, pad, dilation, scale)
    slow = reference_dcnv3(*slow_inputs, groups, kernel, stride, pad, dilation, scale)
    assert fast.shape == slow.shape
    torch.testing.assert_close(fast, slow, rtol=1e-10, atol=1e-10)

    upstream = torch.randn_like(fast)
    (fast * upstream).sum().backward()
    (slow * upstream).sum().backward()
    for name, a, b in zip(("value", "offset", "mask"), fast_inputs, slow_inputs, strict=True):
        assert b.grad.abs().sum() > 0, name
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-9, atol=1e-9, msg=name)


def test_dcnv3_point_order_is_column_major():
    """A one-hot weight on point p with zero offsets copies the neighbour of that point."""
    value = torch.randn(1, 4, 5, 2)
    offset = torch.zeros(1, 4, 5, 9 * 2)
    for p in range(9):
        column, row = divmod(p, 3)
        mask = torch.zeros(1, 4, 5, 9)
        mask[..., p] = 1
        out = dcnv3_pytorch(value, offset, mask, groups=1)
        dx, dy = column - 1, row - 1
        shifted = torch.zeros_like(value)
        ys, xs = slice(max(0, -dy), 4 - max(0, dy)), slice(max(0, -dx), 5 - max(0, dx))
        ys_src, xs_src = slice(max(0, dy), 4 + min(0, dy)), slice(max(0, dx), 5 + min(0, dx))
        shifted[:, ys, xs] = value[:, ys_src, xs_src]
        torch.testing.assert_close(out, shifted)


def test_dcnv3_keeps_float32_sampling_for_half_inputs():
    value, offset, mask = (t.float() for t in random_inputs(1, 6, 6, 2, 4, 3, 1, 1, 1))
    expected = dcnv3_pytorch(value, offset, mask, 2)
    out = dcnv3_pytorch(value.bfloat16(), offset.bfloat16(), mask.bfloat16(), 2)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), expected, rtol=0.05, atol=0.05)


def test_dcnv3_rejects_mismatched_shapes():
    value, offset, mask = random_inputs(1, 6, 6, 2, 2, 3, 1, 1, 1)
    with pytest.raises(ValueError, match="do not fit"):
        dcnv3_pytorch(value, offset[:, :5], mask[:, :5], 2)


def test_dcnv3_layer_starts_as_mean_filter():
    """Zero offsets and uniform weights at initialisation: a zero-padded 3x3 box filter."""
    torch.manual_seed(0)
    layer = DCNv3(channels=8, groups=2)
    x = torch.randn(2, 5, 7, 8)
    projected = layer.input_proj(x).permute(0, 3, 1, 2)  # (B, C, H, W)
    box = torch.nn.functional.avg_pool2d(projected, 3, 1, 1, count_include_pad=True)
    expected = layer.output_proj(box.permute(0, 2, 3, 1))
    torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-5)


def test_compiled_impl_asked_for_but_missing(monkeypatch):
    monkeypatch.setattr(dcnv3_module, "load_compiled_dcnv3", lambda: None)
    with pytest.raises(BridgeNetError, match="compiled DCNv3") as error:
        DCNv3(channels=8, groups=2, impl="compiled")
    assert "dcnv3_impl = 'pytorch'" in str(error.value)


def test_unknown_impl_lists_valid_values():
    with pytest.raises(BridgeNetError, match="pytorch, compiled"):
        DCNv3(channels=8, groups=2, impl="triton")


@pytest.mark.skipif(
    load_compiled_dcnv3() is None or not torch.cuda.is_available(),
    reason="needs the official compiled DCNv3 extension ('DCNv3' module) and a CUDA device",
)
@pytest.mark.parametrize("stride,pad,dilation,scale", GEOMETRIES)
def test_compiled_matches_pytorch(stride, pad, dilation, scale):
    inputs = random_inputs(2, 9, 11, 2, 16, 3, stride, pad, dilation)
    inputs = [t.float().cuda() for t in inputs]
    pure = [t.clone().requires_grad_() for t in inputs]
    compiled = [t.clone().requires_grad_() for t in inputs]

    out_pure = dcnv3_pytorch(*pure, 2, 3, stride, pad, dilation, scale)
    out_compiled = dcnv3_compiled(*compiled, 2, 3, stride, pad, dilation, scale)
    torch.testing.assert_close(out_compiled, out_pure, rtol=1e-4, atol=1e-4)

    upstream = torch.randn_like(out_pure)
    (out_pure * upstream).sum().backward()
    (out_compiled * upstream).sum().backward()
    for a, b in zip(pure, compiled, strict=True):
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-3, atol=1e-3)


# ---------------------------------------------------------------------------------------------
# Backbone

TINY = (("channels", 8), ("depths", (1, 2, 1, 1)), ("groups", (2, 2, 4, 4)))


def tiny(size, *extra, **kwargs):
    return BACKBONES.get(f"internimage-{size}")(**vars(BackboneArgs(extra=TINY + extra, **kwargs)))


def test_registered_sizes():
    assert {"internimage-t", "internimage-b", "internimage-l"} <= set(BACKBONES.names())


@pytest.mark.parametrize("size", ["t", "b", "l"])
def test_levels_match_outputs(size):
    model = tiny(size).eval()
    features = model(torch.randn(2, 3, 64, 96))
    assert len(features) == len(model.levels) == 4
    for level, feature in zip(model.levels, features, strict=True):
        assert feature.shape == (2, level.channels, 64 // level.stride, 96 // level.stride)
    assert [level.channels for level in model.levels] == [8, 16, 32, 64]
    assert [level.stride for level in model.levels] == [4, 8, 16, 32]


@pytest.mark.parametrize("size", ["t", "b"])
def test_gradients_reach_every_parameter(size):
    torch.manual_seed(0)
    model = tiny(size, drop_path_rate=0.1).train()
    # Offset and weight layers start at zero, which blocks the gradient of the branch feeding
    # them until the first step; give them trained-like values.
    for name, parameter in model.named_parameters():
        if ".dcn.offset." in name or ".dcn.mask." in name:
            torch.nn.init.normal_(parameter, std=0.1)
    features = model(torch.randn(2, 3, 32, 32))
    loss = sum((f * torch.randn_like(f)).sum() for f in features)
    loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_runs_under_bf16_autocast():
    """Linear layers run in bfloat16; sampling converts to float32 and back without errors."""
    model = tiny("b").eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        features = model(torch.randn(1, 3, 64, 64))
    assert len(features) == 4 and all(f.isfinite().all() for f in features)


def test_structure_follows_published_sizes():
    b = tiny("b")
    block = b.stages[0].blocks[0]
    assert block.post_norm and block.gamma1 is not None
    assert isinstance(b.stages[0].norm, torch.nn.Identity)  # post-norm: no stage-end norm
    t = tiny("t")
    assert not t.stages[0].blocks[0].post_norm and t.stages[0].blocks[0].gamma1 is None
    assert INTERNIMAGE_SIZES["l"].offset_scale == 2.0
    assert tiny("l").stages[2].blocks[0].dcn.offset_scale == 2.0


def test_bridgenet_on_internimage_t_trains_every_parameter():
    """The full InternImage-T under a tiny BridgeNet decoder, through ``build_model``."""
    torch.manual_seed(0)
    cfg = tiny_model(backbone="internimage-t", backbone_depth=0)
    model = build_model(cfg, NYUD_TASKS[:2], "nyud", (96, 64)).train()
    for name, parameter in model.backbone.named_parameters():
        if ".dcn.offset." in name or ".dcn.mask." in name:
            torch.nn.init.normal_(parameter, std=0.1)
    outputs = model(torch.randn(2, 3, 96, 64))

    assert outputs["final"]["semseg"].shape == (2, 40, 96, 64)
    assert outputs["inter"]["depth"].shape == (2, 1, 3, 2)
    maps = [*outputs["final"].values(), *outputs["inter"].values()]
    sum((m * torch.randn_like(m)).sum() for m in maps).backward()
    silent = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert not silent, f"{len(silent)} parameters get no gradient, e.g. {silent[:3]}"


def test_unknown_extra_option_lists_valid_ones():
    with pytest.raises(BridgeNetError, match="valid options: dcnv3_impl"):
        tiny("t", ("dcn_impl", "pytorch"))


def test_vit_depth_option_is_refused():
    with pytest.raises(BridgeNetError, match="backbone_depth only applies to ViT"):
        tiny("b", ("depth", 2))


def test_internimage_t_has_about_30m_classification_parameters():
    count = classification_parameter_count("t")
    assert 29.5e6 < count < 30.5e6  # published: 30 M


@pytest.mark.slow
@pytest.mark.parametrize("size,published", [("b", 97e6), ("l", 223e6)])
def test_large_sizes_match_published_parameter_counts(size, published):
    assert abs(classification_parameter_count(size) - published) < 0.01 * published


# ---------------------------------------------------------------------------------------------
# Official checkpoints


def official_name(key):
    """Our key -> the official release's key, written from the release's module layout."""
    parts = key.split(".")
    if parts[0] == "stem":  # patch_embed: conv1, norm1 (Sequential[permute, LN, permute]), ...
        layer = parts[1]
        index = ".1" if layer.startswith("norm") else ""
        return f"patch_embed.{layer}{index}.{parts[2]}"
    if parts[0] == "head":
        return {"conv": "conv_head.0", "norm": "conv_head.1.0", "fc": "head"}[parts[1]] + (
            "." + parts[2]
        )
    stage = f"levels.{parts[1]}"
    rest = ".".join(parts[2:])
    replacements = {
        "dcn.dw_conv.": "dcn.dw_conv.0.",
        "dcn.dw_norm.": "dcn.dw_conv.1.1.",
        "norm1.": "norm1.0.",
        "norm2.": "norm2.0.",
        "downsample.norm.": "downsample.norm.1.",
    }
    if rest.startswith("norm."):
        rest = "norm.0." + rest[len("norm.") :]
    for ours, theirs in replacements.items():
        rest = rest.replace(ours, theirs)
    return f"{stage}.{rest}"


def fake_official_state(model, with_head=True):
    generator = torch.Generator().manual_seed(1)
    state = {
        official_name(k): torch.randn(v.shape, generator=generator) if v.is_floating_point() else v
        for k, v in model.state_dict().items()
    }
    if with_head:  # the ImageNet head of an InternImage with 8-channel stage 1
        state["conv_head.0.weight"] = torch.randn(96, 64, 1, 1)
        state["conv_head.1.0.running_mean"] = torch.zeros(96)
        state["head.weight"] = torch.randn(1000, 96)
        state["head.bias"] = torch.zeros(1000)
    return state


@pytest.mark.parametrize("size", ["t", "b"])
def test_loads_official_classification_checkpoint(tmp_path, size):
    state = fake_official_state(tiny(size))
    assert "patch_embed.norm1.1.weight" in state
    assert "levels.0.blocks.0.dcn.dw_conv.1.1.weight" in state
    assert "levels.2.downsample.norm.1.bias" in state
    path = tmp_path / "official.pth"
    torch.save({"model": state}, path)

    model = tiny(size, pretrained=str(path))
    ours = model.state_dict()
    torch.testing.assert_close(
        ours["stages.1.blocks.0.dcn.dw_norm.weight"],
        state["levels.1.blocks.0.dcn.dw_conv.1.1.weight"],
    )
    torch.testing.assert_close(ours["stem.norm2.bias"], state["patch_embed.norm2.1.bias"])
    torch.testing.assert_close(
        ours["stages.3.blocks.0.mlp.fc1.weight"], state["levels.3.blocks.0.mlp.fc1.weight"]
    )


def test_loads_official_segmentation_checkpoint(tmp_path):
    state = {f"backbone.{k}": v for k, v in fake_official_state(tiny("b"), False).items()}
    state["decode_head.conv_seg.weight"] = torch.randn(150, 512, 1, 1)
    path = tmp_path / "upernet.pth"
    torch.save({"state_dict": state, "meta": {"iter": 160000}}, path)

    model = tiny("b", pretrained=str(path))
    torch.testing.assert_close(
        model.state_dict()["stages.2.blocks.0.gamma1"], state["backbone.levels.2.blocks.0.gamma1"]
    )


def test_checkpoint_of_another_size_names_the_counts(tmp_path):
    state = fake_official_state(tiny("b"))
    del state["levels.0.blocks.0.dcn.offset.weight"]
    state["levels.0.blocks.0.dcn.extra.weight"] = torch.zeros(1)
    path = tmp_path / "wrong.pth"
    torch.save(state, path)
    with pytest.raises(BridgeNetError, match="1 missing, 1 unexpected") as error:
        tiny("b", pretrained=str(path))
    assert "official InternImage checkpoint" in str(error.value)


def test_t_checkpoint_does_not_fit_b(tmp_path):
    path = tmp_path / "t.pth"
    torch.save(fake_official_state(tiny("t")), path)
    with pytest.raises(BridgeNetError, match="do not fit the backbone"):
        tiny("b", pretrained=str(path))


def test_missing_weights_file_is_a_user_error(tmp_path):
    with pytest.raises(BridgeNetError, match="not found"):
        build_internimage("t", pretrained=str(tmp_path / "nope.pth"), extra=TINY)
