"""Which validation score picks best.pt."""

import pytest

from bridgenet_cli.engine.selection import build_selection
from bridgenet_cli.errors import BridgeNetError

RESULTS = {"semseg": {"miou": 0.4, "pixel_acc": 0.8}, "depth": {"rmse": 0.6, "abs_rel": 0.2}}


def test_auto_without_references_uses_first_task_primary_metric():
    selection = build_selection("auto", ["semseg", "depth"], has_references=False)
    assert selection.name == "semseg.miou" and selection.higher_is_better
    assert selection.value(RESULTS, None) == 0.4


def test_auto_with_references_uses_delta_mtl():
    selection = build_selection("auto", ["semseg", "depth"], has_references=True)
    assert selection.name == "delta_mtl"
    assert selection.value(RESULTS, 1.5) == 1.5


def test_named_metric_takes_its_direction():
    assert not build_selection("depth.rmse", ["semseg", "depth"], False).higher_is_better
    assert not build_selection("depth.abs_rel", ["semseg", "depth"], False).higher_is_better
    assert build_selection("semseg.pixel_acc", ["semseg", "depth"], False).higher_is_better


def test_improvement_respects_direction_and_rejects_nan():
    lower = build_selection("depth.rmse", ["depth"], False)
    assert lower.improves(0.5, None) and lower.improves(0.5, 0.6) and not lower.improves(0.7, 0.6)
    assert not lower.improves(float("nan"), 0.6)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("normals.mean", "does not train"),
        ("semseg", "not auto, delta_mtl or task.metric"),
        ("delta_mtl", "needs single-task references"),
    ],
)
def test_bad_select_metric(value, message):
    with pytest.raises(BridgeNetError, match=message):
        build_selection(value, ["semseg", "depth"], has_references=False)


def test_missing_metric_in_results_lists_the_available_ones():
    selection = build_selection("semseg.fwiou", ["semseg"], False)
    with pytest.raises(BridgeNetError, match="semseg.miou"):
        selection.value(RESULTS, None)
