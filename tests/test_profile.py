"""``bridgenet profile`` and the profiling library, on tiny models."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from bridgenet_cli.cli.app import app, main
from bridgenet_cli.cli.cmd_profile import build_request, parse_resolution
from bridgenet_cli.config.schema import ModelConfig
from bridgenet_cli.errors import BridgeNetError
from bridgenet_cli.models import build_model
from bridgenet_cli.profiling import ProfileRequest, count_flops, count_parameters, profile_model
from bridgenet_cli.profiling.latency import Timing, measure, time_calls
from bridgenet_cli.profiling.profile import TABLE4, resolve_request, table4_row

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
TINY_SETS = [
    "--set", "model.backbone=vit-tiny", "--set", "model.backbone_depth=2",
    "--set", "model.decoder_width=32", "--set", "model.stage_widths=[32,16,8]",
    "--set", "model.head_width=32", "--set", "model.prelim_width=32",
    "--set", "model.tfr_size=base",
]  # fmt: skip
TINY = ModelConfig(
    backbone="vit-tiny", backbone_depth=2, decoder_width=32, stage_widths=[32, 16, 8],
    head_width=32, prelim_width=32, tfr_size="base",
)  # fmt: skip


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models: one thread avoids OpenMP spin-waits on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_components_sum_to_the_totals():
    model = build_model(TINY, ["semseg", "depth"], "nyud", (96, 64)).eval()
    flops = count_flops(model, torch.randn(1, 3, 96, 64))

    assert flops.total > 0
    assert set(flops.by_component) == set(model.components())
    assert sum(flops.by_component.values()) == pytest.approx(flops.total)
    assert flops.outside_components == pytest.approx(0.0, abs=1.0)
    assert all(value > 0 for value in flops.by_component.values())
    total, trainable = count_parameters(model)
    assert total == trainable == sum(p.numel() for p in model.parameters())


def test_fused_attention_is_counted():
    """fvcore has no rule for scaled_dot_product_attention; ours counts its two products."""
    from fvcore.nn import FlopCountAnalysis

    from bridgenet_cli.profiling.flops import _sdpa_flops

    model = build_model(TINY, ["semseg", "depth"], "nyud", (96, 64)).eval()
    bfe = model.bridges[0]  # width 32, 2 heads; generic map (6, 4), task maps (3, 2)
    inputs = (torch.randn(1, 192, 6, 4), [torch.randn(1, 32, 3, 2)] * 2)

    plain = FlopCountAnalysis(bfe, inputs)
    plain.unsupported_ops_warnings(False)
    counted = FlopCountAnalysis(bfe, inputs)
    counted.set_op_handle("aten::scaled_dot_product_attention", _sdpa_flops)

    queries, keys = 3 * 2, 2 * (2 * 1)  # stride-2 queries; 2 tasks x tokens pooled by 2
    assert counted.total() - plain.total() == 2 * queries * keys * (16 + 16)
    assert "aten::scaled_dot_product_attention" in plain.unsupported_ops()


def test_timing_statistics():
    timing = Timing([3.0, 1.0, 2.0, 10.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0])
    assert timing.median == 5.5
    assert timing.p90 == 9.0
    assert Timing([2.0, 1.0, 3.0]).p90 == 3.0


def test_cpu_timing_path_and_memory_growth():
    calls = []
    timing, memory = measure(
        lambda: calls.append(np.ones(40_000_000).sum()), 2, 1, torch.device("cpu"), "test"
    )
    assert len(calls) == 3 and len(timing.runs) == 2 and len(timing.cpu_runs) == 2
    assert all(t > 0 for t in timing.runs) and timing.as_dict()["cpu_median"] > 0
    assert memory.peak_gb > 0.2  # the 320 MB array
    assert "CPU peak resident growth" in memory.method


def test_time_calls_runs_warmup_untimed():
    calls = []
    timing = time_calls(lambda: calls.append(1), 3, 2, torch.device("cpu"))
    assert len(calls) == 5 and len(timing.runs) == 3


def test_report_json_shape():
    result = CliRunner().invoke(
        app,
        ["profile", "--dataset", "nyud", "--tasks", "semseg,depth", "--resolution", "96x64",
         "--repeats", "1", "--warmup", "0", "--format", "json", *TINY_SETS],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)

    for key in ("params_m", "gflops", "latency_s", "peak_memory_gb", "components", "config"):
        assert key in report
    assert set(report["latency_s"]) >= {"median", "p90"}
    assert report["latency_vs_backbone"] > 1
    assert report["config"]["tasks"] == ["semseg", "depth"]
    assert report["config"]["resolution"] == [96, 64]
    assert report["config"]["backbone"] == "vit-tiny"
    components = report["components"]
    assert {"backbone", "TPP", "BFE", "TFR", "heads"} <= set(components)
    assert sum(c["params_m"] for c in components.values()) == pytest.approx(report["params_m"])
    assert sum(c["gflops"] for c in components.values()) == pytest.approx(report["gflops"])
    assert "multiply-add" in report["flop_convention"]


def test_table_output_and_baseline_variant():
    result = CliRunner().invoke(
        app,
        ["profile", "--dataset", "nyud", "--tasks", "depth", "--variant", "stl",
         "--resolution", "96x64", "--repeats", "0", *TINY_SETS],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "preliminary decoders" in result.stdout and "TPP" not in result.stdout


def test_help_lists_options_and_examples():
    result = CliRunner().invoke(app, ["profile", "--help"])
    assert result.exit_code == 0
    for text in ("--backbone", "--resolution", "--compare", "--amp", "bridgenet profile"):
        assert text in result.stdout


def test_bad_resolution_is_a_one_line_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["profile", "--resolution", "512by512"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--resolution expects HxW" in err and "512x512" in err


def test_parse_resolution():
    assert parse_resolution("448x576") == (448, 576)
    assert parse_resolution(" 64 X 32 ") == (64, 32)
    for bad in ("0x64", "64", "axb", "64x64x3"):
        with pytest.raises(BridgeNetError):
            parse_resolution(bad)


def test_defaults_follow_the_paper():
    pascal = resolve_request(ProfileRequest())
    assert pascal.resolution == (512, 512) and len(pascal.tasks) == 5
    nyud = resolve_request(ProfileRequest(dataset="nyud"))
    assert nyud.resolution == (448, 576) and nyud.tasks == ["semseg", "depth", "normals", "edge"]
    assert resolve_request(ProfileRequest(model=ModelConfig(variant="stl"))).tasks == ["semseg"]


def test_compare_only_for_table4_configurations():
    request = resolve_request(ProfileRequest(model=ModelConfig(backbone="vit-large")))
    assert table4_row(request) == TABLE4["vit-large"]
    with pytest.raises(BridgeNetError, match="Table 4 configuration"):
        table4_row(resolve_request(ProfileRequest(dataset="nyud")))


def test_unavailable_device_and_precision_are_refused():
    if not torch.cuda.is_available():
        with pytest.raises(BridgeNetError, match="CUDA is not available"):
            resolve_request(ProfileRequest(device="cuda"))
    with pytest.raises(BridgeNetError, match="fp16 inference needs CUDA"):
        resolve_request(ProfileRequest(amp="fp16"))
    with pytest.raises(BridgeNetError, match="no task 'depth'"):
        resolve_request(ProfileRequest(tasks=["depth"]))


def test_bf16_profile_runs_on_cpu():
    request = ProfileRequest(
        model=TINY, dataset="nyud", tasks=["semseg"], resolution=(96, 64), amp="bf16",
        repeats=1, warmup=0, flops=False,
    )  # fmt: skip
    report = profile_model(request)
    assert report["config"]["amp"] == "bf16" and report["latency_s"]["median"] > 0
    assert "gflops" not in report and report["components"]["backbone"]["gflops"] is None


def test_set_values_without_a_recipe_keep_the_paper_defaults():
    request = build_request(None, ["model.refine=add"], None, "nyud", None, None, None, None)
    assert request.model.refine == "add"
    assert request.model.backbone == "vit-base" and request.model.tfr_size == "huge"
    request = build_request(None, ["model.tfr_size=base"], "vit-large", None, "semseg", None,
                            None, "256x256")  # fmt: skip
    assert request.model.tfr_size == "base" and request.model.backbone == "vit-large"
    assert request.dataset == "pascal" and request.tasks == ["semseg"]
    assert request.resolution == (256, 256)


def test_recipe_gives_its_training_size():
    """The quickstart's synthetic scenes are 96x128, not the synthetic default 192x256."""
    request = build_request(
        str(RECIPES / "quickstart.toml"), [], None, None, None, None, None, None
    )
    assert request.dataset == "synthetic" and request.resolution == (96, 128)
    request = build_request(
        str(RECIPES / "nyud_vitb.toml"), [], None, "pascal", None, None, None, None
    )
    assert request.resolution is None  # another dataset: that dataset's own size


def test_bad_choice_names_the_option(capsys):
    with pytest.raises(SystemExit):
        main(["profile", "--variant", "bridge"])
    assert "--variant expects one of bridgenet, mtl-baseline, stl" in capsys.readouterr().err
