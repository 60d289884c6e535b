"""Shared test set-up: keep runs small, quiet and away from the user's data folder."""

import os

import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path_factory, monkeypatch):
    """Point the default data folder at a per-session temporary folder."""
    monkeypatch.setenv("BRIDGENET_DATA", str(tmp_path_factory.getbasetemp() / "bridgenet-data"))
