"""Process-group set-up for ``torchrun``: which rank this is, its device, and small collectives.

A plain ``python -m bridgenet_cli train`` is a world of one process and never touches
``torch.distributed``. Under ``torchrun`` the environment variables ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK`` start a process group: NCCL when the ranks own CUDA devices, gloo on CPUs.
"""

import logging
import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from bridgenet_cli.errors import BridgeNetError

logger = logging.getLogger(__name__)

# Rank 0 alone runs validation while the others wait at a barrier; a full PASCAL validation with
# the edge benchmark takes far longer than the default collective timeout.
COLLECTIVE_TIMEOUT = timedelta(hours=3)


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in the run."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def pick_device(preference: str, local_rank: int) -> torch.device:
    """Resolve ``train.device`` (auto | cpu | cuda) to this rank's device."""
    if preference == "cpu":
        return torch.device("cpu")
    if preference == "cuda" and not torch.cuda.is_available():
        raise BridgeNetError(
            "train.device is 'cuda' but no CUDA device is visible",
            "set --set train.device=cpu, or check CUDA_VISIBLE_DEVICES and the driver",
        )
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def init_distributed(device_preference: str) -> DistContext:
    """Join the ``torchrun`` process group if there is one; return this process's context."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_preference, local_rank)
    if world_size == 1:
        return DistContext(rank=0, world_size=1, local_rank=0, device=device)

    if device.type == "cuda":
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, timeout=COLLECTIVE_TIMEOUT)
    logger.info("rank %d of %d on %s (%s)", rank, world_size, device, backend)
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank, device=device)


def shutdown_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    if ctx.distributed:
        dist.barrier()


def mean_across_ranks(values: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """The element-wise mean of ``values`` over ranks (a copy; the input is left alone)."""
    reduced = values.detach().clone()
    if ctx.distributed:
        dist.all_reduce(reduced, op=dist.ReduceOp.SUM)
        reduced /= ctx.world_size
    return reduced


def broadcast_flag(flag: bool, ctx: DistContext) -> bool:
    """Rank 0's ``flag`` on every rank."""
    if not ctx.distributed:
        return flag
    tensor = torch.tensor([int(flag)], device=ctx.device)
    dist.broadcast(tensor, src=0)
    return bool(tensor.item())
