"""TPP, Task Pattern Propagation (paper Sec. 3.2, Eq. 1-2): tasks share their attention patterns.

Each task computes its own attention scores ``Q_j K_j^T / sqrt(C)`` on the coarsest task feature;
the scores of all tasks are stacked and mixed per task by a 1x1 convolution, soft-maxed, and
applied to the task's own values. The mixing happens between the product and the softmax, which
fused attention kernels cannot express, so TPP computes its (small: stride-64 tokens) score
matrices explicitly.
"""

import torch
import torch.nn.functional as F
from torch import nn

from bridgenet_cli.models.layers import Mlp, init_interaction_weights, resize, to_map, to_tokens


class TaskAttention(nn.Module):
    """One task's half of TPP: queries, keys, values, output projection and feed-forward."""

    def __init__(self, channels: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.norm = nn.LayerNorm(channels)
        # Query tokens: a stride-2 depth-wise conv; key/value tokens: a stride-2 3x3 average pool.
        self.query_embed = nn.Sequential(
            nn.Conv2d(channels, channels, 3, stride=2, padding=1, groups=channels, bias=False),
            nn.BatchNorm2d(channels),
        )
        self.q = nn.Linear(channels, channels)
        self.kv = nn.Linear(channels, 2 * channels)
        self.proj = nn.Linear(channels, channels)
        self.mlp = Mlp(channels)

    def scores(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int]]:
        """Raw scores ``(B, heads, Nq, Nk)``, values ``(B, heads, Nk, C/heads)`` and query grid."""
        B, C, H, W = x.shape
        heads = self.num_heads

        normed = to_map(self.norm(to_tokens(x)), (H, W))
        query_map = self.query_embed(normed)  # (B, C, H/2, W/2)
        pooled = F.avg_pool2d(normed, 3, stride=2, padding=1)  # (B, C, H/2, W/2)
        grid = (query_map.shape[-2], query_map.shape[-1])

        # (B, N, C) -> (B, heads, N, C/heads)
        q = self.q(to_tokens(query_map)).unflatten(-1, (heads, -1)).transpose(1, 2)
        k, v = self.kv(to_tokens(pooled)).unflatten(-1, (2, heads, -1)).permute(2, 0, 3, 1, 4)
        scores = (q @ k.transpose(-2, -1)) * C**-0.5  # (B, heads, Nq, Nk)
        return scores, v, grid

    def finish(
        self, x: torch.Tensor, attention: torch.Tensor, v: torch.Tensor, grid: tuple[int, int]
    ) -> torch.Tensor:
        """Apply ``attention`` to the values, project back to ``x``'s grid, feed-forward."""
        B, C, H, W = x.shape

        out = (attention @ v).transpose(1, 2).flatten(2)  # (B, heads, Nq, C/h) -> (B, Nq, C)
        out = resize(to_map(self.proj(out), grid), (H, W))
        y = x + out

        tokens = to_tokens(y)
        tokens = tokens + self.mlp(tokens)
        return to_map(tokens, (H, W)) + x  # the preliminary feature is added once more


class TaskPatternPropagation(nn.Module):
    """TPP over T task features ``(B, C, H, W)`` (stride 32); returns T refined features."""

    def __init__(self, channels: int, num_tasks: int, num_heads: int = 2):
        super().__init__()
        self.num_heads = num_heads
        self.tasks = nn.ModuleList(TaskAttention(channels, num_heads) for _ in range(num_tasks))
        # Row block j mixes all tasks' heads into task j's heads. No bias: the softmax ignores a
        # constant shift, so a bias could never receive a gradient.
        self.mix = nn.Conv2d(num_tasks * num_heads, num_tasks * num_heads, 1, bias=False)
        init_interaction_weights(self)
        # Our choice (neither paper nor release fixes it): start each task from its own scores,
        # identity plus small noise, rather than from the near-uniform attention of a tiny init.
        with torch.no_grad():
            nn.init.normal_(self.mix.weight, std=0.02)
            self.mix.weight[:, :, 0, 0] += torch.eye(
                num_tasks * num_heads, device=self.mix.weight.device
            )

    def forward(
        self, features: list[torch.Tensor], return_attention: bool = False
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], tuple[int, int]]:
        """Refined features, and (when asked) each task's soft-maxed attention and query grid."""
        parts = [task.scores(x) for task, x in zip(self.tasks, features, strict=True)]
        grid = parts[0][2]

        stacked = torch.cat([scores for scores, _, _ in parts], dim=1)  # (B, T*heads, Nq, Nk)
        mixed = self.mix(stacked).float().softmax(dim=-1)
        attention = mixed.to(stacked.dtype).split(self.num_heads, dim=1)  # T x (B, h, Nq, Nk)

        outputs = [
            task.finish(x, attn, v, grid)
            for task, x, attn, (_, v, _) in zip(self.tasks, features, attention, parts, strict=True)
        ]
        return outputs, list(attention) if return_attention else [], grid
