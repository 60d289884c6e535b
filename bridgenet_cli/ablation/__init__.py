"""The paper's ablation studies (section 4.3) as planned, resumable sets of training runs.

- :func:`bridgenet_cli.ablation.plan.plan_study` turns a study name (``task-sets``,
  ``components``, ``refine``), a recipe and ``--set`` overrides into a :class:`StudyPlan`;
- :func:`bridgenet_cli.ablation.study.run_study` trains, evaluates and tabulates it in a folder
  (:func:`~bridgenet_cli.ablation.study.study_status` and
  :func:`~bridgenet_cli.ablation.study.emit_commands` only read);
- :mod:`bridgenet_cli.ablation.tables` writes Markdown, CSV, JSON and a chart of the gains.
"""
