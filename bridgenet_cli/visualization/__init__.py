"""Pictures of models and runs: predictions, internal features, TPP attention, training curves.

Public entry points (each writes pictures and an offline ``index.html`` into a folder):

- :func:`bridgenet_cli.visualization.visualize.visualize_predictions`;
- :func:`bridgenet_cli.visualization.visualize.visualize_features`;
- :func:`bridgenet_cli.visualization.curves.visualize_curves`.

The modules below them render from plain arrays (:mod:`.colors`, :mod:`.render`,
:mod:`.features`, :mod:`.gallery`) and run a model on inputs (:mod:`.inference`).
"""
