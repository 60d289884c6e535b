"""Task weights and deep supervision of the training objective."""

import pytest
import torch
import torch.nn.functional as F

from bridgenet_cli.engine.losses import compute_losses, resize_logits, task_weights, term_task
from bridgenet_cli.errors import BridgeNetError
from bridgenet_cli.tasks import TASKS


def test_weights_follow_the_field_with_overrides():
    weights = task_weights(["semseg", "normals", "edge"], "nyud", {"edge": 70.0})
    assert weights == {"semseg": 1.0, "normals": 10.0, "edge": 70.0}


def test_overriding_a_task_the_run_lacks_is_an_error():
    with pytest.raises(BridgeNetError, match="saliency"):
        task_weights(["semseg"], "nyud", {"saliency": 1.0})


def _batch():
    torch.manual_seed(0)
    semseg = torch.randint(0, 4, (2, 16, 16))
    semseg[:, :2] = 255
    depth = torch.rand(2, 1, 16, 16) + 0.5
    return {"semseg": semseg, "depth": depth}


def _outputs(requires_grad=False):
    torch.manual_seed(1)
    final = {"semseg": torch.randn(2, 4, 16, 16), "depth": torch.rand(2, 1, 16, 16)}
    inter = {"semseg": torch.randn(2, 4, 4, 4), "depth": torch.rand(2, 1, 4, 4)}
    for tensor in [*final.values(), *inter.values()]:
        tensor.requires_grad_(requires_grad)
    return {"final": final, "inter": inter}


def test_total_is_weighted_final_plus_deep_supervision():
    outputs, batch = _outputs(), _batch()
    weights = {"semseg": 1.0, "depth": 3.0}
    losses = compute_losses(outputs, batch, weights, deep_supervision=0.5)

    expected = 0.0
    for task, weight in weights.items():
        loss = TASKS.get(task).loss
        up = F.interpolate(outputs["inter"][task], size=(16, 16), mode="bilinear")
        expected += weight * loss(outputs["final"][task], batch[task])
        expected += 0.5 * weight * loss(up, batch[task])
    assert torch.allclose(losses.total, expected)
    assert set(losses.terms) == {"semseg", "semseg/inter", "depth", "depth/inter"}


def test_without_deep_supervision_inter_outputs_are_ignored():
    losses = compute_losses(_outputs(), _batch(), {"semseg": 1.0}, deep_supervision=0.0)
    assert set(losses.terms) == {"semseg"}
    assert torch.allclose(losses.total, losses.terms["semseg"])


def test_gradients_reach_intermediate_outputs():
    outputs = _outputs(requires_grad=True)
    compute_losses(outputs, _batch(), {"semseg": 1.0, "depth": 1.0}, 0.5).total.backward()
    assert outputs["inter"]["depth"].grad.abs().sum() > 0


def test_resize_is_bilinear_not_nearest():
    coarse = torch.tensor([[[[0.0, 1.0]]]])
    fine = resize_logits(coarse, (1, 4))
    assert len(torch.unique(fine)) > 2  # nearest would only repeat 0 and 1


def test_term_task():
    assert term_task("depth/inter") == "depth" and term_task("semseg") == "semseg"
