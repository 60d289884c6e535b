"""Small stand-ins for the model, the dataset and the evaluator, for fast engine unit tests.

They follow the contracts of ``docs/internals.md`` (sample dicts, ``{"final", "inter"}`` outputs,
``task -> metric -> value`` results) at a few thousand parameters. End-to-end tests use the real
pieces; these only keep the focused engine tests fast.
"""

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from bridgenet_cli.tasks import TASKS


class TinyModel(nn.Module):
    """A conv stem with BatchNorm and stochastic depth, one full-size and one 1/4-size head each."""

    def __init__(self, tasks: list[str], dataset: str, width: int = 8) -> None:
        super().__init__()
        self.tasks = list(tasks)
        self.dataset = dataset
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()
        )
        self.final = nn.ModuleDict(
            {t: nn.Conv2d(width, TASKS.get(t).channels(dataset), 1) for t in tasks}
        )
        self.inter = nn.ModuleDict(
            {t: nn.Conv2d(width, TASKS.get(t).channels(dataset), 1) for t in tasks}
        )

    def forward(self, images: torch.Tensor) -> dict[str, dict[str, torch.Tensor]]:
        features = self.stem(images)
        if self.training:  # a random per-sample mask, like stochastic depth
            keep = (torch.rand(features.shape[0], 1, 1, 1) > 0.1).to(features.dtype)
            features = features * keep
        coarse = nn.functional.avg_pool2d(features, 4)
        return {
            "final": {t: head(features) for t, head in self.final.items()},
            "inter": {t: head(coarse) for t, head in self.inter.items()},
        }


class ToyScenes(Dataset):
    """Images whose labels follow from the pixels, with a random flip as augmentation."""

    def __init__(self, tasks: list[str], size: int = 24, length: int = 40, train: bool = True):
        self.tasks = tasks
        self.size = size
        self.length = length
        self.train = train

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        rng = np.random.default_rng(index)
        image = rng.normal(size=(3, self.size, self.size)).astype(np.float32)
        if self.train and np.random.rand() < 0.5:  # global-RNG augmentation, seeded per sample
            image = np.ascontiguousarray(image[:, :, ::-1])
        brightness = image[0]
        sample = {"image": torch.from_numpy(image), "id": f"toy{index}"}
        if "semseg" in self.tasks:
            sample["semseg"] = torch.from_numpy((brightness > 0).astype(np.int64))
        if "depth" in self.tasks:
            sample["depth"] = torch.from_numpy(np.abs(image[1:2]) + 0.5)
        if "edge" in self.tasks:
            sample["edge"] = torch.from_numpy((image[2:3] > 1.0).astype(np.float32))
        return sample


def toy_validate(model, dataset, recipe, tasks, device):
    """Primary metrics computed plainly: semseg pixel IoU mean, depth RMSE, edge F-score."""
    model.eval()
    results: dict = {}
    with torch.no_grad():
        for task in tasks:
            values = []
            for index in range(min(len(dataset), 8)):
                sample = dataset[index]
                out = model(sample["image"][None].to(device))["final"][task][0].cpu()
                values.append(_score(task, out, sample[task]))
            results[task] = {TASKS.get(task).metric: float(np.mean(values))}
    return results, None


def _score(task: str, out: torch.Tensor, target: torch.Tensor) -> float:
    if task == "semseg":
        pred = out.argmax(0)
        ious = []
        for c in (0, 1):
            inter = ((pred == c) & (target == c)).sum().item()
            union = ((pred == c) | (target == c)).sum().item()
            ious.append(inter / max(union, 1))
        return float(np.mean(ious))
    if task == "depth":
        return float(((out - target) ** 2).mean().sqrt())
    pred = torch.sigmoid(out) > 0.5
    tp = (pred & (target > 0.5)).sum().item()
    return 2 * tp / max(pred.sum().item() + (target > 0.5).sum().item(), 1)


def install(monkeypatch, length: int = 40, size: int = 24) -> None:
    """Make the trainer and ``load_for_inference`` use the stand-ins."""
    from bridgenet_cli.engine import builders, session, trainer

    def build_model(recipe, with_pretrained=True):
        return TinyModel(builders.recipe_tasks(recipe), recipe.data.dataset)

    def build_split(recipe, split, train):
        return ToyScenes(builders.recipe_tasks(recipe), size, length, train=train)

    monkeypatch.setattr(session, "build_recipe_model", build_model)
    monkeypatch.setattr(builders, "build_recipe_model", build_model)
    monkeypatch.setattr(session, "build_split", build_split)
    monkeypatch.setattr(trainer, "build_split", build_split)
    monkeypatch.setattr(session, "prepare_data", lambda recipe: None)
    monkeypatch.setattr(trainer, "validate", toy_validate)
