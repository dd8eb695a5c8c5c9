"""Training: the epoch loop, optimizer and scheduler set-up, and distillation's teacher store.

Owns: one model's training from a config to checkpoints and validation scores.
May import: evaluation, model, data, core and the public modules; never runs, results or the cli.
"""
