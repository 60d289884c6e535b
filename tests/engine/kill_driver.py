"""Train a recipe and SIGKILL this very process right after iteration N (the resume test).

Usage: python kill_driver.py RECIPE RUN_DIR N [KEY=VALUE ...]
"""

import os
import signal
import sys

from bridgenet_cli.config.recipe import load_recipe
from bridgenet_cli.engine.trainer import train


def main() -> None:
    recipe_path, run_dir, kill_at, *overrides = sys.argv[1:]

    def kill(iteration: int) -> None:
        if iteration == int(kill_at):
            os.kill(os.getpid(), signal.SIGKILL)

    train(load_recipe(recipe_path, overrides), run_dir, on_step=kill)


if __name__ == "__main__":
    main()
