"""BFE, the Bridge Feature Extractor (paper Sec. 3.3, Eq. 3-6), and its ablation stand-in.

At each decoder stage the task-generic map S (a backbone level) queries the tokens of all tasks'
maps P at once, so one softmax runs over every task's tokens; the result, after a feed-forward and
residual paths that keep S's low-level detail, is the bridge feature S' that the refiner then
hands back to each task. The bridge stays on the backbone level's grid.
"""

import torch
import torch.nn.functional as F
from torch import nn

from bridgenet_cli.models.layers import (
    ConvBNAct,
    Mlp,
    init_interaction_weights,
    resize,
    to_map,
    to_tokens,
)


class BridgeFeatureExtractor(nn.Module):
    """One stage of BFE.

    Inputs: ``generic`` ``(B, C_in, Hs, Ws)``, T task maps ``(B, width, Hp, Wp)`` and the previous
    stage's bridge (or None). Output: the bridge ``(B, width, Hs, Ws)``.
    """

    def __init__(
        self,
        in_channels: int,
        width: int,
        num_tasks: int,
        kv_pool: int,
        previous_width: int | None,
        num_heads: int = 2,
        query_reduction: int = 2,
    ):
        super().__init__()
        self.num_heads = num_heads
        self.kv_pool = kv_pool
        self.query_stream = ConvBNAct(in_channels, width, 1)
        self.query_embed = nn.Sequential(
            nn.Conv2d(width, width, 3, query_reduction, padding=1, groups=width, bias=False),
            nn.BatchNorm2d(width),
        )
        self.task_norms = nn.ModuleList(nn.LayerNorm(width) for _ in range(num_tasks))
        self.q = nn.Linear(width, width)
        self.kv = nn.Linear(width, 2 * width)
        self.proj = nn.Linear(width, width)
        self.local = nn.Conv2d(width, width, 3, padding=1, groups=width)
        self.mlp = Mlp(width)
        self.previous = nn.Conv2d(previous_width, width, 1) if previous_width else None
        init_interaction_weights(self)

    def task_tokens(self, task_maps: list[torch.Tensor]) -> torch.Tensor:
        """Layer-normed, pooled tokens of every task, concatenated: ``(B, T*Nk, width)``."""
        tokens = []
        for norm, p in zip(self.task_norms, task_maps, strict=True):
            size = (p.shape[-2], p.shape[-1])
            normed = to_map(norm(to_tokens(p)), size)
            pooled = F.avg_pool2d(normed, self.kv_pool, self.kv_pool, ceil_mode=True)
            tokens.append(to_tokens(pooled))
        return torch.cat(tokens, dim=1)

    def forward(
        self,
        generic: torch.Tensor,
        task_maps: list[torch.Tensor],
        previous: torch.Tensor | None = None,
    ) -> torch.Tensor:
        s = self.query_stream(generic)  # (B, width, Hs, Ws)
        B, C, H, W = s.shape
        heads = self.num_heads

        query_map = self.query_embed(s)  # (B, width, Hs/2, Ws/2)
        grid = (query_map.shape[-2], query_map.shape[-1])
        # (B, N, C) -> (B, heads, N, C/heads)
        q = self.q(to_tokens(query_map)).unflatten(-1, (heads, -1)).transpose(1, 2)
        kv = self.kv(self.task_tokens(task_maps))  # (B, T*Nk, 2C)
        k, v = kv.unflatten(-1, (2, heads, -1)).permute(2, 0, 3, 1, 4)

        out = F.scaled_dot_product_attention(q, k, v, scale=C**-0.5)  # (B, heads, Nq, C/heads)
        out = self.proj(out.transpose(1, 2).flatten(2))  # (B, Nq, C)
        out = self.local(resize(to_map(out, grid), (H, W)))
        x = s + out

        tokens = to_tokens(x)
        tokens = tokens + self.mlp(tokens)
        bridge = to_map(tokens, (H, W))

        if self.previous is not None:
            bridge = bridge + resize(self.previous(previous), (H, W))
        return bridge


class GenericBridge(nn.Module):
    """The bridge without BFE (ablation): the backbone level through 1x1 conv + BN + ReLU."""

    def __init__(self, in_channels: int, width: int):
        super().__init__()
        self.query_stream = ConvBNAct(in_channels, width, 1)

    def forward(
        self,
        generic: torch.Tensor,
        task_maps: list[torch.Tensor],
        previous: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return self.query_stream(generic)
