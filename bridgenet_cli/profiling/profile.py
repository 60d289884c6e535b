"""``profile_model``: parameters, FLOPs, latency and memory of one configuration, per component.

The report is a plain dict (what ``bridgenet profile --format json`` prints):

- ``params_m``, ``trainable_params_m``: millions of parameters.
- ``gflops``: GFLOPs for one image (fvcore; one multiply-add = one FLOP), ``flop_convention``.
- ``latency_s``: ``{median, p90, min, runs}`` seconds per forward pass of a batch;
  ``backbone_latency_s`` the same for the bare backbone on the same input in the same run, and
  ``latency_vs_backbone`` the ratio of the medians (a figure that travels between machines).
- ``throughput_img_s``: batch / median latency.
- ``peak_memory_gb`` (GiB) and ``memory_method``: see :mod:`bridgenet_cli.profiling.latency`.
- ``components``: name -> ``{params_m, gflops}``; they sum to the totals (``gflops_outside``
  holds the rest, zero for BridgeNet, whose every operation sits inside a component).
- ``config``: what was profiled; ``paper``: Table 4's figures and the ratios, when asked.
"""

import logging
import platform
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, replace

import torch

from bridgenet_cli.config.schema import ModelConfig
from bridgenet_cli.data.info import DATASETS
from bridgenet_cli.errors import BridgeNetError
from bridgenet_cli.models import build_model
from bridgenet_cli.profiling.flops import (
    FLOP_CONVENTION,
    component_parameters,
    count_flops,
    count_parameters,
)
from bridgenet_cli.profiling.latency import measure

logger = logging.getLogger(__name__)

# The paper's TFR size per dataset (Sec. 4.2.1): TFR-large on PASCAL, TFR-huge on NYUD and
# Cityscapes.
PAPER_TFR_SIZE = {"pascal": "large", "nyud": "huge", "cityscapes": "huge"}

# Table 4 (PASCAL Context, 5 tasks, 512x512, TFR-large, one image): GFLOPs, M parameters, latency
# (s, on one RTX 3090) and memory (GB).
TABLE4 = {
    "vit-base": {"gflops": 412, "params_m": 230, "latency_s": 0.090, "memory_gb": 2.710},
    "vit-large": {"gflops": 645, "params_m": 477, "latency_s": 0.144, "memory_gb": 3.718},
    "internimage-b": {"gflops": 406, "params_m": 248, "latency_s": 0.130, "memory_gb": 2.774},
    "internimage-l": {"gflops": 527, "params_m": 420, "latency_s": 0.171, "memory_gb": 3.494},
}


@dataclass
class ProfileRequest:
    """What to profile and how to time it."""

    model: ModelConfig = field(default_factory=lambda: ModelConfig(backbone="vit-base"))
    dataset: str = "pascal"
    tasks: list[str] = field(default_factory=list)  # empty: all of the dataset's tasks
    resolution: tuple[int, int] | None = None  # (H, W); None: the dataset's training size
    batch: int = 1
    device: str = "cpu"  # cpu | cuda
    amp: str = "none"  # none | bf16 | fp16 (fp16 on CUDA only)
    channels_last: bool = False
    threads: int = 0  # CPU threads for torch; 0: torch's default
    repeats: int = 3  # timed runs; 0 skips timing and memory
    warmup: int = 1
    flops: bool = True
    compare: bool = False  # add Table 4's figures (only for a Table 4 configuration)


def resolve_request(request: ProfileRequest) -> ProfileRequest:
    """Fill defaults (tasks, resolution) and check every value; raise one-line errors."""
    info = DATASETS.get(request.dataset)
    tasks = list(request.tasks) or list(info.tasks)
    if request.model.variant == "stl" and not request.tasks:
        tasks = tasks[:1]
    unknown = [t for t in tasks if t not in info.tasks]
    if unknown:
        raise BridgeNetError(
            f"{request.dataset} has no task {unknown[0]!r}",
            f"choose among {', '.join(info.tasks)}",
        )
    resolution = tuple(request.resolution or info.train_size)
    if len(resolution) != 2 or min(resolution) <= 0:
        raise BridgeNetError(f"bad resolution {resolution}", "give HxW, e.g. 512x512")
    if request.threads < 0:
        raise BridgeNetError(f"threads cannot be negative, got {request.threads}", "use 0 or more")
    if request.batch < 1:
        raise BridgeNetError(f"batch must be at least 1, got {request.batch}", "use --batch 1")
    if request.repeats < 0 or request.warmup < 0:
        raise BridgeNetError("repeats and warm-up runs cannot be negative", "use 0 or more")
    if request.device not in ("cpu", "cuda"):
        raise BridgeNetError(f"unknown device {request.device!r}", "use cpu or cuda")
    if request.device == "cuda" and not torch.cuda.is_available():
        raise BridgeNetError("CUDA is not available on this machine", "use --device cpu")
    if request.amp not in ("none", "bf16", "fp16"):
        raise BridgeNetError(f"unknown precision {request.amp!r}", "use none, bf16 or fp16")
    if request.amp == "fp16" and request.device != "cuda":
        raise BridgeNetError("fp16 inference needs CUDA", "use --amp bf16 on CPU")
    return replace(request, tasks=tasks, resolution=(int(resolution[0]), int(resolution[1])))


def table4_row(request: ProfileRequest) -> dict[str, float]:
    """Table 4's figures for ``request``, or an error saying what Table 4 covers."""
    cfg = request.model
    pascal_tasks = list(DATASETS.get("pascal").tasks)
    matches = (
        cfg.backbone in TABLE4
        and request.dataset == "pascal"
        and sorted(request.tasks) == sorted(pascal_tasks)
        and tuple(request.resolution) == (512, 512)
        and cfg.variant == "bridgenet"
        and cfg.bfe
        and cfg.tpp
        and cfg.refine == "tfr"
        and cfg.tfr_size == "large"
        and not cfg.backbone_depth
    )
    if not matches:
        raise BridgeNetError(
            "--compare needs a Table 4 configuration: BridgeNet with TFR-large on PASCAL, all 5 "
            f"tasks, 512x512, backbone one of {', '.join(TABLE4)}",
            "drop --compare, or profile one of those configurations",
        )
    return TABLE4[cfg.backbone]


def _autocast(device: torch.device, amp: str):
    if amp == "none":
        return nullcontext()
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def profile_model(request: ProfileRequest) -> dict:
    """Build the model of ``request`` with random weights and measure it (see module docstring)."""
    request = resolve_request(request)
    paper = table4_row(request) if request.compare else None
    device = torch.device(request.device)
    H, W = request.resolution
    if request.threads:
        torch.set_num_threads(request.threads)

    logger.info("building %s (%s) for %s", request.model.backbone, request.model.variant,
                ", ".join(request.tasks))  # fmt: skip
    model = build_model(request.model, request.tasks, request.dataset, (H, W)).eval().to(device)
    memory_format = torch.channels_last if request.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    images = torch.randn(request.batch, 3, H, W, device=device).contiguous(
        memory_format=memory_format
    )

    total, trainable = count_parameters(model)
    params = component_parameters(model)
    report: dict = {
        "config": {
            **asdict(request.model),
            "dataset": request.dataset,
            "tasks": request.tasks,
            "resolution": [H, W],
            "batch": request.batch,
            "device": request.device,
            "amp": request.amp,
            "channels_last": request.channels_last,
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "machine": platform.processor() or platform.machine(),
        },
        "params_m": total / 1e6,
        "trainable_params_m": trainable / 1e6,
    }

    # Timing first, so that the memory peak is not inflated by FLOP tracing.
    if request.repeats > 0:
        with torch.inference_mode(), _autocast(device, request.amp):
            logger.info("timing the model: %d warm-up and %d timed runs", request.warmup,
                        request.repeats)  # fmt: skip
            timing, memory = measure(
                lambda: model(images), request.repeats, request.warmup, device, "model"
            )
            logger.info("timing the bare backbone on the same input")
            backbone_timing, _ = measure(
                lambda: model.backbone(images), request.repeats, request.warmup, device, "backbone"
            )
        report["latency_s"] = timing.as_dict()
        report["backbone_latency_s"] = backbone_timing.as_dict()
        report["latency_vs_backbone"] = timing.median / backbone_timing.median
        report["throughput_img_s"] = request.batch / timing.median
        report["peak_memory_gb"] = memory.peak_gb
        if memory.total_peak_gb is not None:
            report["peak_rss_gb"] = memory.total_peak_gb
        report["memory_method"] = memory.method

    flops = None
    if request.flops:
        logger.info("counting FLOPs on one image (fvcore trace)")
        flops = count_flops(model, images[:1].float())
        report["gflops"] = flops.total / 1e9
        report["gflops_outside"] = flops.outside_components / 1e9
        report["flop_convention"] = FLOP_CONVENTION
        report["skipped_ops"] = flops.skipped_ops

    report["components"] = {
        name: {
            "params_m": count / 1e6,
            "gflops": flops.by_component[name] / 1e9 if flops is not None else None,
        }
        for name, count in params.items()
    }

    if paper is not None:
        measured = {
            "params_m": report["params_m"],
            "gflops": report.get("gflops"),
            "latency_s": report.get("latency_s", {}).get("median"),
            "memory_gb": report.get("peak_memory_gb"),
        }
        report["paper"] = {
            key: {
                "paper": value,
                "measured": measured[key],
                "ratio": measured[key] / value if measured[key] is not None else None,
            }
            for key, value in paper.items()
        }
        report["paper_note"] = "Table 4: PASCAL, one image, latency and memory on an RTX 3090"
    return report
