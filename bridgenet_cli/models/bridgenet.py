"""BridgeNet and its ablation variants: a shared backbone and a multi-task, multi-scale decoder.

Data flow for T tasks and n stages (n = 3 for most backbones, 4 for HRNet; coarsest first):

1. The backbone's n coarsest levels give the task-generic maps S_s (``BackboneTaps``); the coarsest
   is also reduced to stride 32 as the input of the preliminary decoders.
2. Preliminary decoders (per task, two 3x3 conv blocks) give task features at stride 32; TPP
   (optional) lets the tasks share attention patterns; a 1x1 head gives the intermediate
   (deep-supervision) prediction; feature and prediction are projected to the first stage width.
3. Stage s (task maps at stride 32 / 2^s; from the second stage on, first up-sampled x2 and passed
   through two dilated 3x3 conv blocks): the bridge S'_s is extracted from S_s and all task maps
   (BFE), then each task map is refined with it (TFR, or add / concat / transformer).
4. Every stage's task maps are normalised (jointly over tasks for BridgeNet), projected to the head
   width, up-sampled to stride 4 and summed; a 3x3 conv block and a 1x1 head per task give the
   final prediction, up-sampled to the input size.

``mtl-baseline`` and ``stl`` keep this decoder but have no TPP and no BFE: each stage adds the
backbone level (1x1 conv) to every task map, with no exchange between tasks.
"""

import torch
from torch import nn

from bridgenet_cli.models.backbones import Backbone, FeatureLevel
from bridgenet_cli.models.bridge import BridgeFeatureExtractor, GenericBridge
from bridgenet_cli.models.layers import ChannelNorm, ConvBNAct, grid_size, reduce_to, resize
from bridgenet_cli.models.refine import (
    AddRefiner,
    ConcatRefiner,
    TaskFeatureRefiner,
    TransformerRefiner,
)
from bridgenet_cli.models.tpp import TaskPatternPropagation

PRELIM_STRIDE = 32  # the preliminary decoders and the first stage work at stride 32
HEAD_STRIDE = 4  # multi-scale aggregation happens at stride 4
NUM_HEADS = 2  # attention heads of TPP and BFE (paper Sec. 4.1)
QUERY_REDUCTION = 2  # BFE query tokens: stride-2 depth-wise conv (paper Sec. 4.1)


class BackboneTaps(nn.Module):
    """Backbone levels -> the task-generic maps S (one per stage) and the preliminary input.

    For single-scale backbones (all used levels at one stride: ViT, dilated ResNet), the levels
    feeding stages 2.. go through a 3x3 conv to twice the stage width, as in the release (288 and
    576 channels for ViT); multi-scale backbones pass their levels through unchanged.
    """

    def __init__(self, levels: list[FeatureLevel], stage_widths: list[int]):
        super().__init__()
        single_scale = len({level.stride for level in levels}) == 1
        self.projections = nn.ModuleList(
            nn.Conv2d(level.channels, 2 * width, 3, padding=1)
            if single_scale and s > 0
            else nn.Identity()
            for s, (level, width) in enumerate(zip(levels, stage_widths, strict=True))
        )
        self.out_channels = [
            2 * width if single_scale and s > 0 else level.channels
            for s, (level, width) in enumerate(zip(levels, stage_widths, strict=True))
        ]

    def forward(
        self, maps: list[torch.Tensor], prelim_size: tuple[int, int]
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """``maps``: coarsest first. Returns S per stage and the coarsest map at stride 32."""
        generic = [proj(x) for proj, x in zip(self.projections, maps, strict=True)]
        return generic, reduce_to(maps[0], prelim_size)


class PreliminaryDecoder(nn.Sequential):
    """Two 3x3 conv + BN + ReLU blocks: ``in -> hidden -> out`` channels."""

    def __init__(self, in_channels: int, hidden: int, out_channels: int):
        super().__init__(ConvBNAct(in_channels, hidden, 3), ConvBNAct(hidden, out_channels, 3))


class UpBlock(nn.Module):
    """Bilinear x2 (to an exact size), then two dilation-2 3x3 conv + BN + ReLU blocks."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.convs = nn.Sequential(
            ConvBNAct(in_channels, out_channels, 3, dilation=2),
            ConvBNAct(out_channels, out_channels, 3, dilation=2),
        )

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return self.convs(resize(x, size))


class StageAggregation(nn.Module):
    """One stage's contribution to the stride-4 sum: norm, 1x1 to the head width, up-sampling.

    ``joint_norm``: one LayerNorm over all tasks' channels together (BridgeNet, as released);
    otherwise one per task (the baselines, whose task decoders stay independent).
    """

    def __init__(self, width: int, num_tasks: int, head_width: int, joint_norm: bool):
        super().__init__()
        self.joint_norm = joint_norm
        if joint_norm:
            self.norms = nn.ModuleList([ChannelNorm(num_tasks * width)])
        else:
            self.norms = nn.ModuleList(ChannelNorm(width) for _ in range(num_tasks))
        self.projections = nn.ModuleList(
            nn.Conv2d(width, head_width, 1) if width != head_width else nn.Identity()
            for _ in range(num_tasks)
        )

    def forward(self, task_maps: list[torch.Tensor], size: tuple[int, int]) -> list[torch.Tensor]:
        if self.joint_norm:
            # T x (B, C, h, w) -> (B, T*C, h, w) -> normalise -> T x (B, C, h, w)
            normed = self.norms[0](torch.cat(task_maps, dim=1)).chunk(len(task_maps), dim=1)
        else:
            normed = [norm(p) for norm, p in zip(self.norms, task_maps, strict=True)]
        # the 1x1 projection commutes with bilinear up-sampling, so it runs at the lower resolution
        return [resize(proj(p), size) for proj, p in zip(self.projections, normed, strict=True)]


class TaskHead(nn.Module):
    """A 1x1 conv to the task's output channels, then bilinear up-sampling to the input size."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return resize(self.conv(x), size)


class BridgeNet(nn.Module):
    """A multi-task dense prediction network (see the module docstring for the data flow).

    ``forward(images (B, 3, H, W), return_internals=False)`` returns
    ``{"final": {task: (B, C_t, H, W)}, "inter": {task: (B, C_t, H/32, W/32)}}`` with raw outputs,
    plus ``"internals"`` when asked: ``S`` and ``S_bridge`` (lists, one map per stage, coarsest
    first), ``P`` (task -> list per stage), ``tpp_attention`` (task -> ``(B, heads, Nq, Nk)``),
    ``tpp_grid`` (the ``(h, w)`` of TPP's query and key grids) and ``strides`` (of P per stage).
    """

    def __init__(
        self,
        backbone: Backbone,
        tasks: list[str],
        out_channels: list[int],
        dataset: str,
        *,
        interaction: bool,
        use_bfe: bool,
        use_tpp: bool,
        refine: str,
        tfr_blocks: int,
        decoder_width: int,
        stage_widths: list[int],
        head_width: int,
        prelim_width: int,
        drop_path_rate: float,
    ):
        super().__init__()
        self.tasks = list(tasks)
        self.dataset = dataset
        self.refine = refine if interaction else "add"
        num_tasks = len(tasks)
        num_stages = len(stage_widths)
        self.strides = [PRELIM_STRIDE >> s for s in range(num_stages)]

        # 1. backbone and its taps
        self.backbone = backbone
        levels = backbone.levels[-num_stages:][::-1]  # coarsest first
        self.taps = BackboneTaps(levels, stage_widths)
        generic_channels = self.taps.out_channels

        # 2. preliminary decoders, TPP, intermediate heads, first-stage inputs
        coarsest = levels[0].channels
        hidden = prelim_width or backbone.prelim_width or coarsest
        self.prelim = nn.ModuleList(
            PreliminaryDecoder(coarsest, hidden, decoder_width) for _ in tasks
        )
        self.tpp = (
            TaskPatternPropagation(decoder_width, num_tasks, NUM_HEADS)
            if interaction and use_tpp
            else None
        )
        self.inter_heads = nn.ModuleList(nn.Conv2d(decoder_width, c, 1) for c in out_channels)
        self.stage_inputs = nn.ModuleList(
            nn.Conv2d(decoder_width + c, stage_widths[0], 1) for c in out_channels
        )

        # 3. stages: up-sampling, bridges, refiners
        self.upsample = nn.ModuleList(
            nn.ModuleList(UpBlock(stage_widths[s - 1], stage_widths[s]) for _ in tasks)
            for s in range(1, num_stages)
        )
        self.bridges = nn.ModuleList()
        self.refiners = nn.ModuleList()
        for s, width in enumerate(stage_widths):
            kv_pool = 2 ** (s + 1)  # [2, 4, 8(, 16)]: every stage attends over stride-64 tokens
            if interaction and use_bfe:
                previous = stage_widths[s - 1] if s > 0 else None
                bridge = BridgeFeatureExtractor(
                    generic_channels[s], width, num_tasks, kv_pool, previous,
                    NUM_HEADS, QUERY_REDUCTION,
                )  # fmt: skip
            else:
                bridge = GenericBridge(generic_channels[s], width)
            self.bridges.append(bridge)
            self.refiners.append(
                self._build_refiner(width, num_tasks, kv_pool, tfr_blocks, drop_path_rate)
            )

        # 4. aggregation and heads
        self.aggregate = nn.ModuleList(
            StageAggregation(width, num_tasks, head_width, joint_norm=interaction)
            for width in stage_widths
        )
        self.fuse = nn.ModuleList(ConvBNAct(head_width, head_width, 3) for _ in tasks)
        self.heads = nn.ModuleList(TaskHead(head_width, c) for c in out_channels)

    def _build_refiner(
        self, width: int, num_tasks: int, kv_pool: int, tfr_blocks: int, drop_path_rate: float
    ) -> nn.Module:
        if self.refine == "tfr":
            return TaskFeatureRefiner(width, num_tasks, tfr_blocks, drop_path_rate)
        if self.refine == "concat":
            return ConcatRefiner(width)
        if self.refine == "transformer":
            return TransformerRefiner(width, kv_pool)
        return AddRefiner()

    def components(self) -> dict[str, list[nn.Module]]:
        """Named groups of submodules that partition the parameters (empty groups left out)."""
        attends = isinstance(self.bridges[0], BridgeFeatureExtractor)
        bridge_name = "BFE" if attends else "backbone skips"
        refiner_name = {"tfr": "TFR", "concat": "concat refiner", "transformer": "transformer"}
        groups = {
            "backbone": [self.backbone],
            "backbone taps": [self.taps],
            "preliminary decoders": [self.prelim, self.stage_inputs],
            "TPP": [self.tpp] if self.tpp is not None else [],
            bridge_name: [self.bridges],
            refiner_name.get(self.refine, "add"): [self.refiners],
            "up-sampling": [self.upsample],
            "aggregation": [self.aggregate, self.fuse],
            "heads": [self.heads, self.inter_heads],
        }
        return {
            name: modules
            for name, modules in groups.items()
            if any(True for m in modules for _ in m.parameters())
        }

    @torch.no_grad()
    def init_output_bias(self, task: str, value: float) -> None:
        """Start ``task``'s final and intermediate outputs at ``value`` (a prior, e.g. mean depth).

        Regression heads start near zero; on a target far from zero (depth in metres) they spend
        their first iterations only learning the offset.
        """
        index = self.tasks.index(task)
        self.heads[index].conv.bias.fill_(value)
        self.inter_heads[index].bias.fill_(value)

    def forward(self, images: torch.Tensor, return_internals: bool = False) -> dict:
        B, _, H, W = images.shape
        grids = [grid_size((H, W), stride) for stride in self.strides]
        head_grid = grid_size((H, W), HEAD_STRIDE)

        # 1. backbone: the n coarsest levels, coarsest first
        levels = self.backbone(images)[-len(self.strides) :][::-1]
        generic, coarse = self.taps(levels, grids[0])

        # 2. preliminary task features (stride 32), TPP, intermediate predictions
        features = [decoder(coarse) for decoder in self.prelim]
        attention, tpp_grid = [], None
        if self.tpp is not None:
            features, attention, tpp_grid = self.tpp(features, return_attention=return_internals)
        inter = [head(f) for head, f in zip(self.inter_heads, features, strict=True)]
        task_maps = [
            proj(torch.cat([f, y], dim=1))
            for proj, f, y in zip(self.stage_inputs, features, inter, strict=True)
        ]

        # 3. stages
        bridge = None
        summed: list[torch.Tensor] = []
        bridges, stage_maps = [], []
        for s in range(len(self.strides)):
            if s > 0:
                task_maps = [
                    up(p, grids[s]) for up, p in zip(self.upsample[s - 1], task_maps, strict=True)
                ]
            bridge = self.bridges[s](generic[s], task_maps, bridge)
            task_maps = self.refiners[s](task_maps, bridge)

            # 4a. this stage's share of the stride-4 sum
            shares = self.aggregate[s](task_maps, head_grid)
            summed = shares if s == 0 else [a + b for a, b in zip(summed, shares, strict=True)]
            if return_internals:
                bridges.append(bridge)
                stage_maps.append(task_maps)

        # 4b. per-task fusion and heads
        final = [
            head(fuse(x), (H, W))
            for head, fuse, x in zip(self.heads, self.fuse, summed, strict=True)
        ]

        outputs = {
            "final": dict(zip(self.tasks, final, strict=True)),
            "inter": dict(zip(self.tasks, inter, strict=True)),
        }
        if return_internals:
            outputs["internals"] = {
                "S": generic,
                "S_bridge": bridges,
                "P": {t: [maps[i] for maps in stage_maps] for i, t in enumerate(self.tasks)},
                "tpp_attention": dict(zip(self.tasks, attention, strict=False)),
                "tpp_grid": tpp_grid,
                "strides": list(self.strides),
            }
        return outputs
