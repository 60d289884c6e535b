"""Optimisers of the paper and the per-iteration polynomial schedule."""

import pytest
import torch
from torch import nn

from bridgenet_cli.engine.optim import PolySchedule, build_optimizer, build_scheduler
from bridgenet_cli.errors import BridgeNetError


@pytest.mark.parametrize(
    ("name", "cls"),
    [("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW), ("sgd", torch.optim.SGD)],
)
def test_optimizer_kinds(name, cls):
    optimizer = build_optimizer(nn.Linear(2, 2), name, 0.01, 5e-4, 0.9, (0.9, 0.999))
    assert type(optimizer) is cls
    assert optimizer.param_groups[0]["weight_decay"] == 5e-4
    if name == "sgd":
        assert optimizer.param_groups[0]["momentum"] == 0.9


def test_unknown_optimizer_lists_valid_names():
    with pytest.raises(BridgeNetError, match="adam, adamw, sgd"):
        build_optimizer(nn.Linear(2, 2), "lamb", 0.01, 0.0, 0.9, (0.9, 0.999))


def test_frozen_parameters_are_left_out():
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    model[0].requires_grad_(False)
    optimizer = build_optimizer(model, "adam", 0.01, 0.0, 0.9, (0.9, 0.999))
    assert len(optimizer.param_groups[0]["params"]) == 2


def test_poly_decay_with_power_point_nine():
    schedule = PolySchedule(max_iters=100, power=0.9)
    assert schedule(0) == 1.0
    assert schedule(50) == pytest.approx(0.5**0.9)
    assert schedule(100) == 0.0


def test_warmup_rises_linearly_then_decays():
    schedule = PolySchedule(max_iters=100, power=0.9, warmup_iters=4)
    assert [schedule(i) for i in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert schedule(4) < 1.0


def test_scheduler_steps_per_iteration_and_round_trips():
    optimizer = build_optimizer(nn.Linear(2, 2), "adam", 1.0, 0.0, 0.9, (0.9, 0.999))
    scheduler = build_scheduler(optimizer, max_iters=10, power=0.9, warmup_iters=0)
    for _ in range(3):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.7**0.9)

    state = scheduler.state_dict()
    fresh_opt = build_optimizer(nn.Linear(2, 2), "adam", 1.0, 0.0, 0.9, (0.9, 0.999))
    fresh = build_scheduler(fresh_opt, max_iters=10, power=0.9, warmup_iters=0)
    fresh.load_state_dict(state)
    assert fresh.last_epoch == 3
