"""Runs: one training run, grids of runs, launchers, distillation's stages, ``bench eval`` runs.

Owns: run directories, combination ids, locks, resume and retention, the run lifecycle hooks.
May import: training, evaluation, results, model, data, core and the public modules.
"""
