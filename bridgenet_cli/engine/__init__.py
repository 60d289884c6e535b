"""Training: the loop, losses, optimisers, schedules, checkpoints and distributed set-up.

Entry points: :func:`bridgenet_cli.engine.trainer.train` (train or resume a recipe in a run
folder) and :func:`bridgenet_cli.engine.checkpoint.load_for_inference` (a trained model from a run
folder or checkpoint). Submodules are imported on use, so importing this package is cheap.
"""
