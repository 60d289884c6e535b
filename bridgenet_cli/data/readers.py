"""Sources of decoded samples: readers of dataset folders in their published formats.

A reader knows one dataset's on-disk layout (see ``docs`` and the module of each dataset). It
lists the sample ids of a split, reads the size of a sample cheaply, and decodes a sample into a
record (:mod:`bridgenet_cli.data.records`), raising :class:`SampleError` for a bad one. Problems
with the folder as a whole (missing split file, missing task folder) are a
:class:`~bridgenet_cli.errors.BridgeNetError` raised when the reader is made.

Readers never write anything, least of all into the dataset folder. They are picklable, so the
preparer can hand one to each worker process.
"""

import dataclasses
from pathlib import Path

import numpy as np

from bridgenet_cli.data.info import DATASETS, DatasetInfo
from bridgenet_cli.data.records import SampleError, SampleFiles, check_record
from bridgenet_cli.errors import BridgeNetError
from bridgenet_cli.registry import Registry


class FolderReader:
    """Base of the dataset-folder readers; subclasses fill in the layout.

    ``tasks`` selects a subset of the dataset's tasks (all when None); every selected task's
    folder must exist.
    """

    dataset = ""  # name in DATASETS
    splits = ("train", "val")

    def __init__(self, root: str | Path, tasks: tuple[str, ...] | None = None):
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise BridgeNetError(
                f"{self.dataset} folder not found: {self.root}",
                "pass the folder that holds the unpacked dataset with --root",
            )
        known = DATASETS.get(self.dataset).tasks
        chosen = tuple(tasks) if tasks else known
        unknown = [t for t in chosen if t not in known]
        if unknown:
            raise BridgeNetError(
                f"{self.dataset} has no task {unknown[0]!r}",
                f"choose from {', '.join(known)}",
            )
        self.tasks = tuple(t for t in known if t in chosen)  # the dataset's order
        self.variant = self.detect_variant()
        for task in self.tasks:
            self.check_task_folder(task)

    # -- to be provided by each dataset ------------------------------------------------------

    def detect_variant(self) -> str:
        return "default"

    def check_task_folder(self, task: str) -> None:
        raise NotImplementedError

    def split_ids(self, split: str) -> list[str]:
        raise NotImplementedError

    def output_size(self, split: str, sample_id: str) -> tuple[int, int]:
        """``(H, W)`` the decoded sample will have (header only); SampleError if unreadable."""
        raise NotImplementedError

    def decode(self, files: SampleFiles, split: str, sample_id: str) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def options(self) -> dict[str, object]:
        """Settings that change what is decoded (recorded in the cache)."""
        return {}

    # -- shared ------------------------------------------------------------------------------

    @property
    def info(self) -> DatasetInfo:
        return DATASETS.get(self.dataset)

    def read(
        self, split: str, sample_id: str, checksum: bool = True
    ) -> tuple[dict[str, np.ndarray], str]:
        """Decode and check one sample; returns the record and the checksum of its files."""
        files = SampleFiles(self.root, checksum)
        record = self.decode(files, split, sample_id)
        check_record(record, self.info, self.tasks)
        return record, files.digest()

    def prepare_command(self) -> str:
        """The ``bridgenet prepare-data`` command that re-creates a cache from this folder."""
        parts = [f"bridgenet prepare-data {self.dataset} --root {self.root}"]
        if tuple(self.tasks) != self.info.tasks:
            parts.append(f"--tasks {','.join(self.tasks)}")
        return " ".join(parts)

    def missing_folder(self, task: str, relative: str) -> BridgeNetError:
        return BridgeNetError(
            f"{self.dataset} folder {self.root} has no {relative}/ folder for the {task} task",
            f"add it, or leave the task out with --tasks "
            f"{','.join(t for t in self.tasks if t != task)}",
        )

    def read_split_file(self, relative: str) -> list[str]:
        path = self.root / relative
        if not path.is_file():
            raise BridgeNetError(
                f"{self.dataset} folder {self.root} has no split file {relative}",
                f"check that --root is the folder that holds {relative.split('/')[0]}/",
            )
        ids = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        if not ids:
            raise BridgeNetError(f"split file {path} lists no samples", "restore the file")
        return ids


READERS: Registry[type[FolderReader]] = Registry("dataset format")


def make_reader(dataset: str, root: str | Path, tasks=None, **options) -> FolderReader:
    """The reader of ``dataset`` (a name in :data:`READERS`) for the folder ``root``."""
    import bridgenet_cli.data.cityscapes  # noqa: F401  (registers the readers)
    import bridgenet_cli.data.nyud  # noqa: F401
    import bridgenet_cli.data.pascal  # noqa: F401

    return READERS.get(dataset)(root, tasks, **options)


def with_depth_unit(info: DatasetInfo, unit: str) -> DatasetInfo:
    return info if info.depth_unit == unit else dataclasses.replace(info, depth_unit=unit)


__all__ = ["READERS", "FolderReader", "SampleError", "make_reader", "with_depth_unit"]
