"""How each stage hands the bridge feature back to the task maps (paper Sec. 3.4, Table 6).

Every refiner maps T task maps ``(B, width, H, W)`` and the stage's bridge ``(B, width, Hb, Wb)``
to T refined task maps of the same shape:

- ``tfr``: TFR, the Task Feature Refiner: per task, a cascade of residual blocks that each fuse the
  bridge through a depth-wise separable dilated 3x3 convolution (dilations 1, 2, 5 repeating; a
  paper "layer" is three blocks).
- ``add``: the bridge is added to every task map (no parameters).
- ``concat``: the bridge is concatenated to every task map and one 3x3 convolution maps it back.
- ``transformer``: the bridge is added, then global self-attention layers run over all tasks'
  tokens jointly (the "Add + InvPT" row).
"""

import torch
import torch.nn.functional as F
from timm.layers import DropPath
from torch import nn

from bridgenet_cli.models.layers import (
    ConvBNAct,
    Mlp,
    init_interaction_weights,
    resize,
    to_map,
    to_tokens,
)

TFR_DILATIONS = (1, 2, 5)
# Blocks per stage: a paper "layer" is 3 blocks; base / large / huge = 2 / 4 / 6 layers.
TFR_BLOCKS = {"base": 6, "large": 12, "huge": 18}
# "Add + InvPT" (Table 6: +30.7 M on NYUD with ViT-B) is not specified further. Our choice: 6
# pre-norm transformer layers per stage, shared by all tasks, which with the release's widths
# (576, 288, 144) hold 31.4 M parameters whatever the number of tasks.
TRANSFORMER_LAYERS = 6


class RefineBlock(nn.Module):
    """One TFR block: ``x + DropPath(expand(dw_dilated(reduce([x, bridge]))))``.

    The 1x1 reduction of the concatenation ``[x, bridge]`` is split into a task half (here) and a
    bridge half (``bridge_part``, computed by :class:`TaskFeatureRefiner` for all blocks at once,
    since every block of a stage sees the same bridge): the same weights and FLOPs, no copies.
    """

    def __init__(self, width: int, dilation: int, drop_path: float):
        super().__init__()
        hidden = width // 2
        self.reduce = nn.Conv2d(width, hidden, 1, bias=False)
        self.norm1 = nn.BatchNorm2d(hidden)
        self.spatial = ConvBNAct(hidden, hidden, 3, dilation=dilation, groups=hidden, act=nn.GELU)
        self.expand = nn.Conv2d(hidden, width, 1)
        self.act = nn.GELU()
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, bridge_part: torch.Tensor) -> torch.Tensor:
        y = self.act(self.norm1(self.reduce(x) + bridge_part))
        y = self.expand(self.spatial(y))
        return x + self.drop_path(y)


class TaskFeatureRefiner(nn.Module):
    """TFR for one stage: ``num_blocks`` blocks per task, each with its own weights."""

    def __init__(self, width: int, num_tasks: int, num_blocks: int, drop_path_rate: float):
        super().__init__()
        if width % 2:
            raise ValueError(f"TFR needs an even stage width, got {width}")
        self.num_blocks = num_blocks
        # The bridge halves of every block's 1x1 reduction, for all tasks, as one convolution.
        self.bridge_parts = nn.Conv2d(width, num_tasks * num_blocks * (width // 2), 1, bias=False)
        rates = [drop_path_rate * i / max(num_blocks - 1, 1) for i in range(num_blocks)]
        self.blocks = nn.ModuleList(
            nn.ModuleList(
                RefineBlock(width, TFR_DILATIONS[i % len(TFR_DILATIONS)], rates[i])
                for i in range(num_blocks)
            )
            for _ in range(num_tasks)
        )
        init_interaction_weights(self)

    def forward(self, task_maps: list[torch.Tensor], bridge: torch.Tensor) -> list[torch.Tensor]:
        size = (task_maps[0].shape[-2], task_maps[0].shape[-1])
        # (B, width, h, w) -> T*blocks pieces of (B, width/2, h, w)
        parts = self.bridge_parts(resize(bridge, size)).chunk(len(self.blocks) * self.num_blocks, 1)

        refined = []
        for t, (blocks, x) in enumerate(zip(self.blocks, task_maps, strict=True)):
            for i, block in enumerate(blocks):
                x = block(x, parts[t * self.num_blocks + i])
            refined.append(x)
        return refined


class AddRefiner(nn.Module):
    """Adds the bridge to every task map (Table 6 "Add", no parameters)."""

    def forward(self, task_maps: list[torch.Tensor], bridge: torch.Tensor) -> list[torch.Tensor]:
        bridge = resize(bridge, (task_maps[0].shape[-2], task_maps[0].shape[-1]))
        return [p + bridge for p in task_maps]


class ConcatRefiner(nn.Module):
    """``ReLU(BN(conv3x3([P_j, S'])))`` with one convolution shared by the tasks.

    Table 6 gives "+7.3 M" and the paper "a single convolutional layer": a shared 3x3 conv holds
    7.8 M with the release's widths (per-task 1x1 convs would hold 3.5 M), so we share it.
    """

    def __init__(self, width: int):
        super().__init__()
        self.fuse = ConvBNAct(2 * width, width, 3)

    def forward(self, task_maps: list[torch.Tensor], bridge: torch.Tensor) -> list[torch.Tensor]:
        bridge = resize(bridge, (task_maps[0].shape[-2], task_maps[0].shape[-1]))
        return [self.fuse(torch.cat([p, bridge], dim=1)) for p in task_maps]


class JointAttentionLayer(nn.Module):
    """Pre-norm self-attention over all tasks' tokens, keys/values pooled by ``kv_pool``."""

    def __init__(self, width: int, kv_pool: int, num_heads: int = 2):
        super().__init__()
        self.num_heads = num_heads
        self.kv_pool = kv_pool
        self.norm = nn.LayerNorm(width)
        self.q = nn.Linear(width, width)
        self.kv = nn.Linear(width, 2 * width)
        self.proj = nn.Linear(width, width)
        self.mlp = Mlp(width)

    def forward(self, tokens: torch.Tensor, num_tasks: int, size: tuple[int, int]) -> torch.Tensor:
        """``tokens``: ``(B, T*H*W, C)``, the tasks' maps one after another."""
        B, N, C = tokens.shape
        heads = self.num_heads

        normed = self.norm(tokens)
        maps = to_map(normed.reshape(B * num_tasks, N // num_tasks, C), size)  # (B*T, C, H, W)
        pooled = F.avg_pool2d(maps, self.kv_pool, self.kv_pool, ceil_mode=True)
        kv_tokens = to_tokens(pooled).reshape(B, -1, C)  # (B, T*Nk, C)

        # (B, N, C) -> (B, heads, N, C/heads)
        q = self.q(normed).unflatten(-1, (heads, -1)).transpose(1, 2)
        k, v = self.kv(kv_tokens).unflatten(-1, (2, heads, -1)).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)  # (B, heads, N, C/heads)
        tokens = tokens + self.proj(out.transpose(1, 2).flatten(2))

        return tokens + self.mlp(tokens)


class TransformerRefiner(nn.Module):
    """Adds the bridge, then ``num_layers`` joint self-attention layers shared by the tasks."""

    def __init__(self, width: int, kv_pool: int, num_layers: int = TRANSFORMER_LAYERS):
        super().__init__()
        self.layers = nn.ModuleList(JointAttentionLayer(width, kv_pool) for _ in range(num_layers))
        init_interaction_weights(self)

    def forward(self, task_maps: list[torch.Tensor], bridge: torch.Tensor) -> list[torch.Tensor]:
        B, C, H, W = task_maps[0].shape
        T = len(task_maps)
        bridge = resize(bridge, (H, W))

        # T x (B, C, H, W) -> (B, T*H*W, C)
        tokens = torch.cat([to_tokens(p + bridge) for p in task_maps], dim=1)
        for layer in self.layers:
            tokens = layer(tokens, T, (H, W))

        return [to_map(t, (H, W)) for t in tokens.chunk(T, dim=1)]
