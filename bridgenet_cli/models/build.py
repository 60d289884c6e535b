"""The one place where a recipe's ``[model]`` table becomes constructor arguments."""

import logging

from torch import nn

from bridgenet_cli.config.schema import ModelConfig
from bridgenet_cli.data.info import DATASETS
from bridgenet_cli.errors import BridgeNetError
from bridgenet_cli.models.backbones import Backbone, BackboneArgs, build_backbone
from bridgenet_cli.models.bridgenet import BridgeNet
from bridgenet_cli.models.refine import TFR_BLOCKS
from bridgenet_cli.tasks import TASKS

logger = logging.getLogger(__name__)

FIRST_STAGE_WIDTH = 576  # the release's stage widths: 576, 288, 144 (and 72 for a fourth stage)
MAX_STAGES = 4  # stage strides 32, 16, 8, 4; aggregation runs at stride 4


def resolve_stage_widths(model_cfg: ModelConfig, backbone: Backbone) -> list[int]:
    """The configured stage widths, or 576 halved per stage for the backbone's decoder levels."""
    num_levels = len(backbone.levels)
    widths = list(model_cfg.stage_widths) or [
        FIRST_STAGE_WIDTH >> s for s in range(min(backbone.decoder_levels, num_levels))
    ]
    if backbone.needs_all_levels and len(widths) != num_levels:
        raise BridgeNetError(
            f"{model_cfg.backbone} feeds all its {num_levels} levels to the decoder, but "
            f"model.stage_widths has {len(widths)} entries",
            f"give {num_levels} widths, e.g. [576, 288, 144, 72], or [] for the default",
        )
    if not 1 <= len(widths) <= min(MAX_STAGES, num_levels):
        raise BridgeNetError(
            f"model.stage_widths has {len(widths)} entries; this backbone feeds at most "
            f"{min(MAX_STAGES, num_levels)} stages",
            "give one even width per stage, coarsest first, e.g. [576, 288, 144], or [] for the "
            "default",
        )
    if any(w <= 0 or w % 2 for w in widths):
        raise BridgeNetError(
            f"model.stage_widths must be positive even numbers, got {widths}",
            "use widths like [576, 288, 144]",
        )
    return widths


def build_model(
    model_cfg: ModelConfig, tasks: list[str], dataset: str, img_size: tuple[int, int]
) -> nn.Module:
    """Build the network of ``model_cfg`` for ``tasks`` on ``dataset`` at input size ``img_size``.

    Output channels come from ``TASKS.get(t).channels(dataset)``. Returns a :class:`BridgeNet`
    with ``.tasks``, ``.dataset`` and ``.components()``.
    """
    DATASETS.get(dataset)
    if not tasks:
        raise BridgeNetError("no tasks to build a model for", "name at least one task")
    out_channels = [TASKS.get(t).channels(dataset) for t in tasks]
    if model_cfg.variant not in ("bridgenet", "mtl-baseline", "stl"):
        raise BridgeNetError(
            f"unknown model.variant {model_cfg.variant!r}", "use bridgenet, mtl-baseline or stl"
        )
    if model_cfg.variant == "stl" and len(tasks) != 1:
        raise BridgeNetError(
            f"model.variant = 'stl' trains one task, got {len(tasks)}: {', '.join(tasks)}",
            "set data.tasks to a single task, or use variant mtl-baseline",
        )
    if model_cfg.refine not in ("tfr", "add", "concat", "transformer"):
        raise BridgeNetError(
            f"unknown model.refine {model_cfg.refine!r}", "use tfr, add, concat or transformer"
        )
    if model_cfg.tfr_size not in TFR_BLOCKS:
        raise BridgeNetError(
            f"unknown model.tfr_size {model_cfg.tfr_size!r}", "use base, large or huge"
        )

    extra: list[tuple[str, object]] = [("dcnv3_impl", model_cfg.dcnv3_impl)]
    if model_cfg.backbone_depth:
        extra.append(("depth", model_cfg.backbone_depth))
    backbone = build_backbone(
        model_cfg.backbone,
        BackboneArgs(
            img_size=(int(img_size[0]), int(img_size[1])),
            pretrained=model_cfg.pretrained,
            drop_path_rate=model_cfg.backbone_drop_path_rate,
            extra=tuple(extra),
        ),
    )
    widths = resolve_stage_widths(model_cfg, backbone)

    interaction = model_cfg.variant == "bridgenet"
    model = BridgeNet(
        backbone,
        list(tasks),
        out_channels,
        dataset,
        interaction=interaction,
        use_bfe=model_cfg.bfe,
        use_tpp=model_cfg.tpp,
        refine=model_cfg.refine,
        tfr_blocks=TFR_BLOCKS[model_cfg.tfr_size],
        decoder_width=model_cfg.decoder_width,
        stage_widths=widths,
        head_width=model_cfg.head_width,
        prelim_width=model_cfg.prelim_width,
        drop_path_rate=model_cfg.drop_path_rate,
    )
    logger.debug(
        "built %s (%s) for %s on %s: %.1f M parameters",
        model_cfg.backbone, model_cfg.variant, ", ".join(tasks), dataset,
        sum(p.numel() for p in model.parameters()) / 1e6,
    )  # fmt: skip
    return model
