"""Built-in launchers (``bench run --launcher local|torchrun|slurm``); see :mod:`bench.runs.launchers`."""
