"""The training order: deterministic, resumable and shardable without changing the batches."""

import random

import numpy as np
import pytest
import torch

from bridgenet_cli.engine.sampler import (
    SeededSamples,
    StepBatchSampler,
    StepLayout,
    epoch_permutation,
)
from bridgenet_cli.errors import BridgeNetError


def _steps(layout, rank, start, stop, seed=3):
    """Per step, the list of micro-batches (lists of dataset indices) of one rank."""
    sampler = StepBatchSampler(layout, rank=rank, seed=seed, start_iter=start, max_iters=stop)
    batches = [[index for index, _ in micro] for micro in sampler]
    return [batches[i : i + layout.grad_accum] for i in range(0, len(batches), layout.grad_accum)]


def test_every_step_takes_distinct_samples_within_an_epoch():
    layout = StepLayout(num_samples=23, batch_size=4, grad_accum=1, world_size=1)
    steps = _steps(layout, rank=0, start=0, stop=layout.steps_per_epoch)
    seen = [index for step in steps for micro in step for index in micro]
    assert len(seen) == 20 and len(set(seen)) == 20  # the remainder of 3 is dropped


def test_epochs_use_different_orders_keyed_on_seed():
    assert not np.array_equal(epoch_permutation(50, 0, 0), epoch_permutation(50, 0, 1))
    assert np.array_equal(epoch_permutation(50, 7, 2), epoch_permutation(50, 7, 2))
    assert not np.array_equal(epoch_permutation(50, 7, 2), epoch_permutation(50, 8, 2))


def test_resuming_mid_epoch_continues_the_same_sequence():
    layout = StepLayout(num_samples=10, batch_size=3, grad_accum=1, world_size=1)
    whole = _steps(layout, rank=0, start=0, stop=9)
    assert _steps(layout, rank=0, start=4, stop=9) == whole[4:]


def test_two_ranks_see_the_micro_batches_of_one_accumulating_process():
    single = StepLayout(num_samples=40, batch_size=8, grad_accum=2, world_size=1)
    sharded = StepLayout(num_samples=40, batch_size=8, grad_accum=1, world_size=2)
    one = _steps(single, rank=0, start=0, stop=7)
    rank0 = _steps(sharded, rank=0, start=0, stop=7)
    rank1 = _steps(sharded, rank=1, start=0, stop=7)
    for step, (a, b, c) in enumerate(zip(one, rank0, rank1, strict=True)):
        assert a == [b[0], c[0]], f"step {step}"


def test_sample_seeds_match_across_layouts():
    single = StepBatchSampler(StepLayout(12, 4, 2, 1), rank=0, seed=1, start_iter=0, max_iters=2)
    sharded = StepBatchSampler(StepLayout(12, 4, 1, 2), rank=1, seed=1, start_iter=0, max_iters=2)
    assert list(single)[1] == list(sharded)[0]


def test_batch_that_does_not_split_is_an_error():
    with pytest.raises(BridgeNetError, match="multiple of 4"):
        StepLayout(num_samples=40, batch_size=6, grad_accum=2, world_size=2).check()


def test_split_smaller_than_a_batch_is_an_error():
    with pytest.raises(BridgeNetError, match="fewer than one batch"):
        StepLayout(num_samples=3, batch_size=6, grad_accum=1, world_size=1).check()


def test_position_names_epoch_and_step():
    layout = StepLayout(num_samples=10, batch_size=3, grad_accum=1, world_size=1)
    assert layout.position(7) == {
        "epoch": 2, "step_in_epoch": 1, "steps_per_epoch": 3, "num_samples": 10, "batch_size": 3,
    }  # fmt: skip


class _RandomItems:
    def __len__(self):
        return 5

    def __getitem__(self, index):
        return (index, random.random(), float(np.random.rand()), float(torch.rand(())))


def test_seeded_fetch_is_reproducible_and_leaves_global_streams_alone():
    wrapped = SeededSamples(_RandomItems())
    torch.manual_seed(0)
    before = torch.rand(3)
    torch.manual_seed(0)
    first = wrapped[(2, 99)]
    after = torch.rand(3)

    assert first == wrapped[(2, 99)]
    assert first != wrapped[(2, 98)]
    assert torch.equal(before, after)  # the fetch did not consume the caller's stream
