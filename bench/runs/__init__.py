"""Runs: one run's lifecycle, the grid of runs, launchers, distillation's two stages, evaluation runs.

Owns: turning a config into finished runs on disk (run folders, status, retention).
May import: leaderboard, training, results, evaluation, model, data, core and the public modules; never the cli.
"""
