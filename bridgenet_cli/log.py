"""Logging set-up: one logger per module, a rich console handler, rank-aware under DDP."""

import logging
import os

from rich.console import Console
from rich.logging import RichHandler

# Progress bars and log lines share this console so that they do not tear each other apart.
console = Console(stderr=True)


def setup_logging(verbosity: int = 0) -> None:
    """Configure the ``bridgenet_cli`` loggers; ``verbosity`` -1 quiet, 0 normal, 1 verbose.

    Ranks other than 0 of a distributed run only log warnings and errors.
    """
    level = {-1: logging.WARNING, 0: logging.INFO, 1: logging.DEBUG}[max(-1, min(1, verbosity))]
    if int(os.environ.get("RANK", "0")) != 0:
        level = max(level, logging.WARNING)
    handler = RichHandler(console=console, show_path=verbosity > 0, rich_tracebacks=False)
    handler.setFormatter(logging.Formatter("%(message)s", datefmt="[%X]"))
    root = logging.getLogger("bridgenet_cli")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def progress_enabled() -> bool:
    """Progress bars only on rank 0 and only when the logger is not quieted."""
    quiet = logging.getLogger("bridgenet_cli").level > logging.INFO
    return int(os.environ.get("RANK", "0")) == 0 and not quiet
