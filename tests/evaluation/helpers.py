"""Small stand-ins shared by the evaluation tests."""

from pathlib import Path

import torch
from torch import nn

from bridgenet_cli.config.schema import DataConfig, SyntheticConfig
from bridgenet_cli.data import build_dataset
from bridgenet_cli.tasks import TASKS

SYNTHETIC_SETTINGS = {"num_train": 2, "num_val": 3, "height": 40, "width": 56, "seed": 3}
SYNTHETIC_OVERRIDES = [f"data.synthetic.{k}={v}" for k, v in SYNTHETIC_SETTINGS.items()]


def synthetic_config() -> DataConfig:
    return DataConfig(dataset="synthetic", synthetic=SyntheticConfig(**SYNTHETIC_SETTINGS))


def synthetic_val(tasks: list[str]):
    return build_dataset(synthetic_config(), "val", tasks, train=False)


class PixelModel(nn.Module):
    """A per-pixel linear map of the image to every task's raw output (deterministic)."""

    def __init__(self, tasks: list[str], dataset: str = "synthetic", seed: int = 0):
        super().__init__()
        self.tasks = list(tasks)
        self.dataset = dataset
        generator = torch.Generator().manual_seed(seed)
        self.heads = nn.ModuleDict()
        for task in self.tasks:
            head = nn.Conv2d(3, TASKS.get(task).channels(dataset), 1)
            with torch.no_grad():
                head.weight.copy_(torch.randn(head.weight.shape, generator=generator))
                head.bias.copy_(torch.randn(head.bias.shape, generator=generator))
                if task == "depth":
                    head.bias.add_(4.0)
            self.heads[task] = head

    def forward(self, images: torch.Tensor, return_internals: bool = False) -> dict:
        return {"final": {t: self.heads[t](images) for t in self.tasks}, "inter": {}}


def listing(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in Path(root).rglob("*") if p.is_file())
