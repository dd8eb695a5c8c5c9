"""Every `bench eval` command in docs/reproduce.md parses and names registered components, options and protocols."""

from __future__ import annotations

import shlex
from pathlib import Path

from bench.cli.main import _parser
from bench.core.config import split_list
from bench.core.option_values import parse_set_options
from bench.core.registry import Registry
from bench.evaluation.protocols import check_protocol

DOC = Path(__file__).resolve().parents[1] / "docs" / "reproduce.md"


def _commands() -> list[str]:
    return [line.strip() for line in DOC.read_text().splitlines() if line.strip().startswith("bench eval ")]


def test_every_reproduce_command_parses() -> None:
    commands = _commands()
    assert len(commands) == 6  # three checkpoints x (Clotho, AudioCaps)
    registry = Registry()
    registry.load_entry_points(autoload=False)
    checkpoints = set()
    for command in commands:
        args = _parser().parse_args(shlex.split(command)[1:])
        assert args.command == "eval"
        for protocol in split_list(args.protocol):
            check_protocol(protocol)
        sets = parse_set_options(args.set)
        for name in split_list(args.model):
            registry.resolve_options("model", name, {k: str(v) for k, v in sets.pop(name, {}).items()})
        for dataset in split_list(args.dataset):
            registry.resolve_options("dataset", dataset, {k: str(v) for k, v in sets.pop(dataset, {}).items()})
        assert not sets, f"{command}: --set for something it does not score: {sorted(sets)}"
        checkpoints.add(parse_set_options(args.set)["clap"]["model"])
    assert {str(c) for c in checkpoints} == {"laion/clap-htsat-unfused", "laion/clap-htsat-fused",
                                             "laion/larger_clap_general"}
