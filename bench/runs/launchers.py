"""Launchers: how ``bench run`` gets a grid's combinations run (in this process, under torchrun, on Slurm).

A launcher is a plugin on the ``register_launchers`` hook (:mod:`bench.hookspecs`), chosen with
``bench run --launcher NAME`` and configured with ``--set NAME.KEY=VALUE``. The built-ins
(``local``, ``torchrun``, ``slurm``) live in ``bench_plugins.launchers`` and register exactly as a
third party's ``ray`` or ``kubernetes`` launcher would.

Contract: ``factory(**options)`` returns an object with

``launch(configs, request) -> list[dict] | None``
    ``configs``: the grid, one :class:`bench.core.config.RunConfig` per combination and seed, already
    checked (preflight) and built; ``request``: a :class:`LaunchRequest` (the ``bench run`` argv of
    the grid, ``--force``, ``--dry-run``). Return the results when the combinations ran in this
    process, or ``None`` when they were submitted elsewhere (bench then prints no leaderboard).
    To run one combination elsewhere, call :func:`bench.toolkit.run_grid` with ``[config]`` there: it
    skips a finished combination, resumes an interrupted one from its ``last.pt`` and holds the
    combination's lock (:func:`bench.runs.grid.claim_combination`) so two submissions never train it at
    once. User mistakes raise :class:`bench.errors.ConfigError` (one line).
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from typing import Any

# What ``--launcher`` means when it is not given; ``none`` is its older spelling.
DEFAULT_LAUNCHER = "local"
ALIASES = {"none": "local"}


@dataclass
class LaunchRequest:
    """What the command line asked for besides the grid itself."""

    argv: list[str] = field(default_factory=list)  # ``bench run`` arguments, launcher flags removed
    force: bool = False
    dry_run: bool = False
    args: argparse.Namespace | None = None  # the parsed command line, for launchers that re-execute it
    jobs: list[Any] = field(default_factory=list)  # what a submitting launcher submitted (its job handles)


def launcher_name(args: argparse.Namespace) -> str:
    name = getattr(args, "launcher", None) or DEFAULT_LAUNCHER
    return ALIASES.get(name, name)


def split_launcher_sets(sets: list[str], name: str) -> tuple[list[str], dict[str, str]]:
    """``--set`` values for the launcher ``name`` (``slurm.partition=gpu``) apart from the rest.

    They configure how the grid is launched, not what is trained, so they never reach the
    components' preflight (where ``slurm`` would be a component the run does not use).
    """
    rest: list[str] = []
    options: dict[str, str] = {}
    for text in sets:
        key, eq, value = text.partition("=")
        head, dot, option = key.strip().partition(".")
        if eq and dot and head == name:
            options[option.strip()] = value.strip()
        else:
            rest.append(text)
    return rest, options


def build_launcher(args: argparse.Namespace, registry: Any) -> tuple[Any, list[str]]:
    """The launcher the command line names (options from its ``--set``) and the remaining ``--set``."""
    name = launcher_name(args)
    rest, options = split_launcher_sets(list(getattr(args, "set", []) or []), name)
    if getattr(args, "dry_run", False) and name == DEFAULT_LAUNCHER:
        from bench.errors import ConfigError

        raise ConfigError("--dry-run shows what a launcher would submit; use it with --launcher slurm "
                          "(or another launcher that submits jobs), or with --preset NAME to print its configurations")
    return registry.build("launcher", name, options), rest


def request_of(args: argparse.Namespace, argv: list[str]) -> LaunchRequest:
    return LaunchRequest(argv=strip_launcher_argv(argv, launcher_name(args)), force=bool(args.force),
                         dry_run=bool(getattr(args, "dry_run", False)), args=args)


def strip_launcher_argv(argv: list[str], name: str) -> list[str]:
    """``argv`` without ``--launcher X``, ``--dry-run`` and ``--set NAME.KEY=VALUE`` of the launcher."""
    out: list[str] = []
    tokens = iter(argv)
    for token in tokens:
        if token in ("--launcher", "--nproc"):
            next(tokens, None)
            continue
        if token.startswith(("--launcher=", "--nproc=")) or token == "--dry-run":
            continue
        if token == "--set":
            value = next(tokens, "")
            if value.partition(".")[0] != name:
                out += [token, value]
            continue
        if token.startswith("--set=") and token[len("--set="):].partition(".")[0] == name:
            continue
        out.append(token)
    return out


def relaunch_with_torchrun(args: argparse.Namespace) -> int:
    """Replace this process by the same ``bench run`` under torchrun, one process per GPU (or 2 on CPU)."""
    import shutil
    import sys

    nproc = args.nproc or default_nproc()
    argv = [a for a in sys.argv[1:]]
    cleaned, skip = [], False
    for token in argv:
        if skip:
            skip = False
            continue
        if token in ("--launcher", "--nproc"):
            skip = True
            continue
        if token.startswith("--launcher=") or token.startswith("--nproc="):
            continue
        cleaned.append(token)
    torchrun = shutil.which("torchrun")
    command = ([torchrun] if torchrun else [sys.executable, "-m", "torch.distributed.run"])
    command += ["--standalone", f"--nproc_per_node={nproc}", "-m", "bench", *cleaned]
    os.execv(command[0], command)
    return 0  # pragma: no cover


def default_nproc() -> int:
    import torch

    return max(1, torch.cuda.device_count()) if torch.cuda.is_available() else 2


def join_process_group() -> None:
    """Join the process group torchrun or a scheduler set up (WORLD_SIZE > 1); else a no-op that imports no torch."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group(backend=backend)
