"""Deterministic, resumable, rank-sharded order of training samples.

The order depends only on the seed and the epoch: epoch ``e`` visits the samples in a permutation
drawn from ``(seed, e)``. Optimiser step ``s`` of an epoch takes the next ``batch_size`` samples
of that permutation (the remainder of an epoch is dropped), and splits them into
``world_size * grad_accum`` equal chunks: rank ``r`` gets chunks ``r * grad_accum ... r *
grad_accum + grad_accum - 1``, one per accumulated micro-batch. So a run resumed at any step sees
exactly the samples an uninterrupted run would, and one process accumulating two micro-batches sees
the same micro-batches as two processes taking one each.

Each sample is fetched with the random generators seeded from ``(seed, epoch, position)``, so its
augmentation is the same whatever the worker, the resume point or the number of ranks.
"""

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from bridgenet_cli.errors import BridgeNetError

SampleKey = tuple[int, int]  # (dataset index, seed of its augmentation)


@dataclass(frozen=True)
class StepLayout:
    """How one optimiser step's global batch is split over ranks and accumulated micro-batches."""

    num_samples: int  # samples in the training split
    batch_size: int  # global batch per optimiser step
    grad_accum: int  # micro-batches per step on each rank
    world_size: int

    @property
    def micro_batch(self) -> int:
        return self.batch_size // (self.world_size * self.grad_accum)

    @property
    def steps_per_epoch(self) -> int:
        return self.num_samples // self.batch_size

    def check(self) -> None:
        """Raise a :class:`BridgeNetError` if the batch does not split or the data is too small."""
        chunks = self.world_size * self.grad_accum
        if self.batch_size % chunks != 0:
            raise BridgeNetError(
                f"train.batch_size={self.batch_size} does not split into {self.world_size} "
                f"rank(s) x {self.grad_accum} accumulation step(s)",
                f"use a train.batch_size that is a multiple of {chunks}",
            )
        if self.steps_per_epoch == 0:
            raise BridgeNetError(
                f"the training split has {self.num_samples} samples, fewer than one batch of "
                f"{self.batch_size}",
                "lower train.batch_size or use a larger training split",
            )

    def position(self, iteration: int) -> dict[str, int]:
        """The data position before optimiser step ``iteration`` (0-based), for checkpoints."""
        return {
            "epoch": iteration // self.steps_per_epoch,
            "step_in_epoch": iteration % self.steps_per_epoch,
            "steps_per_epoch": self.steps_per_epoch,
            "num_samples": self.num_samples,
            "batch_size": self.batch_size,
        }


def epoch_permutation(num_samples: int, seed: int, epoch: int) -> np.ndarray:
    """The visiting order of epoch ``epoch``: a permutation keyed on ``(seed, epoch)``."""
    return np.random.default_rng([seed, epoch]).permutation(num_samples)


def sample_seed(seed: int, epoch: int, position: int) -> int:
    """The augmentation seed of the sample at ``position`` of epoch ``epoch``."""
    return int(np.random.SeedSequence([seed, epoch, position]).generate_state(1)[0])


class StepBatchSampler(Sampler[list[SampleKey]]):
    """Yields this rank's micro-batches of :data:`SampleKey` for steps ``start_iter..max_iters-1``.

    One sampler covers the whole remaining run (across epochs), so a single DataLoader iterator
    with persistent workers serves every step.
    """

    def __init__(
        self, layout: StepLayout, rank: int, seed: int, start_iter: int, max_iters: int
    ) -> None:
        layout.check()
        self.layout = layout
        self.rank = rank
        self.seed = seed
        self.start_iter = start_iter
        self.max_iters = max_iters

    def __len__(self) -> int:
        return max(0, self.max_iters - self.start_iter) * self.layout.grad_accum

    def __iter__(self) -> Iterator[list[SampleKey]]:
        layout = self.layout
        micro = layout.micro_batch
        order, order_epoch = None, -1
        for iteration in range(self.start_iter, self.max_iters):
            epoch, step = divmod(iteration, layout.steps_per_epoch)
            if epoch != order_epoch:
                order, order_epoch = epoch_permutation(layout.num_samples, self.seed, epoch), epoch

            step_start = step * layout.batch_size
            for accum in range(layout.grad_accum):
                chunk = self.rank * layout.grad_accum + accum
                first = step_start + chunk * micro
                yield [
                    (int(order[pos]), sample_seed(self.seed, epoch, pos))
                    for pos in range(first, first + micro)
                ]


class SeededSamples(Dataset):
    """Wraps a dataset so that item ``(index, seed)`` is fetched with all generators seeded.

    Python's ``random``, NumPy's global generator and torch's CPU generator are seeded with
    ``seed`` for the fetch and restored afterwards, so fetching never disturbs the caller's streams.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: SampleKey) -> Any:
        index, seed = key
        saved = (random.getstate(), np.random.get_state(), torch.get_rng_state())
        random.seed(seed)
        np.random.seed(seed)
        torch.random.default_generator.manual_seed(seed)  # CPU only; CUDA streams untouched
        try:
            return self.dataset[index]
        finally:
            random.setstate(saved[0])
            np.random.set_state(saved[1])
            torch.set_rng_state(saved[2])
