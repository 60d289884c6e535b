"""Options and helpers shared by several commands.

Options that commands in more than one module take live here; those shared by the subcommands of
one group (``prepare-data``, ``ablate``, ``visualize``) live in that group's module. An
``Annotated`` alias carries the option's type, names and help, and each command gives the default
(``device: DeviceOption = "auto"``), so one option can default differently in two commands.
"""

from typing import Annotated

import typer

from bridgenet_cli.config.recipe import load_recipe, recipe_to_toml
from bridgenet_cli.config.schema import Recipe

SET_OPTION = typer.Option(
    [],
    "--set",
    "-s",
    help="Override a recipe key (typed by the schema); repeatable, e.g. --set train.max_iters=200",
    metavar="KEY=VALUE",
)
PRINT_RECIPE_OPTION = typer.Option(
    False, "--print-recipe", help="Print the resolved recipe as TOML and exit."
)

DeviceOption = Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")]
"""Where a trained model runs (``eval``, ``visualize``); the commands default to "auto"."""


def resolve_recipe(path: str, overrides: list[str], print_recipe: bool) -> Recipe | None:
    """Load a recipe; with ``print_recipe`` print it and return None (the caller then stops)."""
    recipe = load_recipe(path, overrides)
    if print_recipe:
        typer.echo(recipe_to_toml(recipe), nl=False)
        return None
    return recipe
