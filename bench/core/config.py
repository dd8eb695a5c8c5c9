"""Run configuration: what one training run is, independent of how it was asked for.

The CLI (and presets) produce :class:`RunConfig` objects, one per combination of the grid; the
engine consumes them. ``--set NAME.KEY=VALUE`` options are validated here against the factory
signatures of the registry, so a typo fails before anything is trained.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from bench.core.option_values import (  # noqa: F401  (coercion lives in bench.core.option_values; re-exported for callers)
    Ge,
    RawValue,
    coerce,
    coerce_field,
    component_options,
    parse_set_options,
    parse_value,
)
from bench.errors import ConfigError

PRESET_DIR = Path(__file__).resolve().parents[1] / "presets"
DEFAULT_RUNS_DIR = Path("runs")
DEFAULT_RESULTS_DIR = Path("runs/results")
COMPONENT_FIELDS = {
    "dataset": "dataset",
    "audio_encoder": "encoder",
    "text_encoder": "text_encoder",
    "loss": "loss",
}


@dataclass(frozen=True)
class ComponentSpec:
    """A component by registry name, with the options the user set (defaults are filled in later)."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "options": dict(self.options)}


@dataclass(frozen=True)
class DatasetSpec(ComponentSpec):
    """A dataset or a ``a+b`` combination: the ``+`` syntax is parsed here and nowhere else.

    A single dataset keeps its options flat; a combination keeps them per member
    (``{"clotho": {...}}``).
    """

    @staticmethod
    def members_of(name: str) -> tuple[str, ...]:
        """The registry names a dataset name is made of: ``"a+b"`` -> ``("a", "b")``."""
        return tuple(part for part in name.split("+") if part)

    @property
    def members(self) -> tuple[str, ...]:
        return self.members_of(self.name)

    @property
    def is_combination(self) -> bool:
        return len(self.members) > 1

    @property
    def evaluated_on(self) -> str:
        """The member whose val/test splits a run reports (the last one)."""
        return self.members[-1]

    def member_options(self, member: str) -> dict[str, Any]:
        """The options the user set for one member."""
        if not self.is_combination:
            return dict(self.options) if member == self.name else {}
        return dict(self.options.get(member, {}))

    @classmethod
    def of(cls, spec: ComponentSpec) -> DatasetSpec:
        return spec if isinstance(spec, DatasetSpec) else cls(spec.name, dict(spec.options))


# TrainSettings fields that do not change what a run computes: the decoded-audio cache gives the
# same bits as decoding (bench.data.audio_cache), so it is a speed setting like keep.
NOT_IDENTITY = frozenset({"keep", "audio_cache"})


@dataclass
class TrainSettings:
    """Optimisation and evaluation settings; every field can be set with ``--set train.KEY=VALUE``."""

    # With captions_per_audio=2 the default run takes a few minutes on 2 CPU cores; at least 1
    # (checked before anything is built: a run without an epoch has no best checkpoint to test).
    epochs: Annotated[int, Ge(1)] = 8
    batch_size: int = 64
    lr: float = 2e-5  # encoders that declare ``pretrained = True``
    head_lr: float = 1e-3  # projections and encoders trained from scratch
    weight_decay: float = 0.0
    warmup_epochs: float = 1.0
    min_lr: float = 1e-7
    decay_epochs: float | None = None  # cosine reaches min_lr here; None means at the last epoch
    grad_clip: float = 1.0
    proj_dim: int = 1024
    amp: str = "auto"  # auto (bf16/fp16 on CUDA, off on CPU), off, bf16, fp16
    num_workers: int = 2
    eval_batch_size: int = 64
    eval_chunk: int = 2048
    captions_per_audio: int = 2  # k: k random captions per recording each epoch; 0: every pair (salsa)
    embedding_cache: bool = True  # cache frozen encoders' outputs on disk (see bench.evaluation.embedding_cache)
    # Keep decoded, resampled clips on disk (bench.data.audio_cache) for files that must be resampled:
    # the same bits as decoding each time, so on by default (docs/performance.md).
    audio_cache: bool = True
    # Checkpoints kept once a run has finished (bench.runs.retention): best = best.pt without optimizer
    # state (what --init, evaluation and fusion read), last = last.pt only, all = both as written,
    # none = neither. Not part of a run's identity: it changes what stays on disk, not the numbers.
    keep: Literal["best", "last", "all", "none"] = "best"

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]


@dataclass
class RunConfig:
    """One combination of the grid: everything needed to reproduce a run."""

    dataset: DatasetSpec
    audio_encoder: ComponentSpec
    text_encoder: ComponentSpec
    loss: ComponentSpec
    seed: int = 0
    train: TrainSettings = field(default_factory=TrainSettings)
    device: str = "auto"
    # Results go next to the runs; the committed leaderboard/results only when asked for.
    results_dir: Path = DEFAULT_RESULTS_DIR
    runs_dir: Path = DEFAULT_RUNS_DIR
    teachers: tuple[str, ...] = ()
    init: str | None = None
    run_id: str | None = None
    resume: bool = False
    preset: str | None = None
    role: str | None = None  # "teacher" for the stage-1 run a distillation run trained for itself
    loggers: tuple[ComponentSpec, ...] = ()  # how a run is watched; not part of its identity
    # A stage of a preset's pipeline (bench.runs.pipeline): {name, stage, stages: [{name, epochs}],
    # init_stage, init_combination}; None for a run that is no pipeline's stage.
    pipeline: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self.dataset = DatasetSpec.of(self.dataset)

    def combination_key(self) -> str:
        """Identity of the experiment without the seed: what seeds are aggregated over."""
        payload = {
            "dataset": self.dataset.to_json(),
            "audio_encoder": self.audio_encoder.to_json(),
            "text_encoder": self.text_encoder.to_json(),
            "loss": self.loss.to_json(),
            "train": {k: v for k, v in dataclasses.asdict(self.train).items() if k not in NOT_IDENTITY},
            "teachers": list(self.teachers),
            "init": self.init,
        }
        if self.pipeline:
            # A stage starts from an earlier stage's combination, whichever of its runs (seed,
            # --force) that resolves to, so the stage's seeds share one combination id.
            payload["init"] = self.pipeline.get("init_combination")
            payload["pipeline"] = {k: self.pipeline.get(k) for k in ("name", "stage", "init_stage")}
        return json.dumps(payload, sort_keys=True, default=str)


def split_list(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [part.strip() for item in items for part in str(item).split(",") if part.strip()]


def available_presets() -> dict[str, Path]:
    return {path.stem: path for path in sorted(PRESET_DIR.glob("*.toml"))}


def load_preset(name_or_path: str) -> dict[str, Any]:
    """A preset is a TOML file with a ``[run]`` table (CLI flag names) and a ``[set]`` table."""
    presets = available_presets()
    path = presets.get(name_or_path) or Path(name_or_path)
    if not path.is_file():
        raise ConfigError(
            f"unknown preset {name_or_path!r}; available: {', '.join(presets) or '(none)'} (or a path to a .toml file)"
        )
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    unknown = sorted(set(data) - {"description", "run", "set", "stages"})
    if unknown:
        raise ConfigError(f"{path}: unknown table {unknown[0]!r}; a preset has description, [run], [set] "
                          f"and [[stages]]")
    data.setdefault("run", {})
    data.setdefault("set", {})
    for table in ("run", "set"):  # `run = 3` or `[[run]]` parse as TOML but are no tables
        if not isinstance(data[table], dict):
            raise ConfigError(f"{path}: {table} is {type(data[table]).__name__}, not a table; write it as [{table}]")
    if not isinstance(data.get("description", ""), str):
        raise ConfigError(f"{path}: description must be a string")
    data["stages"] = _preset_stages(path, data.get("stages", []))
    data["path"] = str(path)
    return data


def _preset_stages(path: Path, stages: Any) -> list[dict[str, Any]]:
    """A pipeline's ``[[stages]]``: each a ``name``, optional ``init`` (an earlier stage's name:
    start from its best checkpoint), and ``[stages.run]``/``[stages.set]`` over the preset's own."""
    if not isinstance(stages, list) or not all(isinstance(st, dict) for st in stages):
        raise ConfigError(f"{path}: stages must be an array of tables ([[stages]])")
    names: list[str] = []
    for index, stage in enumerate(stages, 1):
        unknown = sorted(set(stage) - {"name", "init", "run", "set"})
        name = stage.get("name")
        if unknown or not isinstance(name, str) or not name or ":" in name or name in names:
            problem = (f"unknown key {unknown[0]!r}" if unknown else
                       "needs a unique name without ':'")
            raise ConfigError(f"{path}: stage {index} {problem}; a stage has name, init, [stages.run], [stages.set]")
        init = stage.get("init")
        if init is not None and init not in names:
            raise ConfigError(f"{path}: stage {name!r}: init = {init!r} names no earlier stage "
                              f"({', '.join(names) or 'none before it'})")
        stage.setdefault("run", {})
        stage.setdefault("set", {})
        names.append(name)
    return stages


def build_grid(
    *,
    datasets: list[str],
    encoders: list[str],
    text_encoders: list[str],
    losses: list[str],
    seeds: list[int],
    set_options: dict[str, dict[str, Any]],
    train_overrides: dict[str, Any],
    registry: Any,
    loggers: list[str] | tuple[str, ...] = (),
    **common: Any,
) -> list[RunConfig]:
    """Every combination of the lists, with ``--set`` options validated and routed to components.

    A ``--set NAME.KEY`` whose NAME is none of the run's components is an error, as is an unknown
    KEY: the message lists the valid keys. ``train.KEY`` sets :class:`TrainSettings`.
    """
    train_kwargs = dict(train_overrides)
    for key, value in set_options.get("train", {}).items():
        if key not in TrainSettings.keys():
            raise ConfigError(f"unknown option train.{key}. Valid keys: {', '.join(TrainSettings.keys())}.")
        train_kwargs[key] = value
    train_kwargs = {k: coerce_field(TrainSettings, k, v) for k, v in train_kwargs.items()}

    used_names: set[str] = {"train"}
    kinds_names = {
        "audio_encoder": encoders,
        "text_encoder": text_encoders,
        "loss": losses,
    }
    specs: dict[str, dict[str, ComponentSpec]] = {}
    for kind, names in kinds_names.items():
        specs[kind] = {}
        for name in names:
            specs[kind][name] = component_spec(registry, kind, name, set_options.get(name, {}))
            used_names.add(name)
    specs["dataset"] = {}
    for name in datasets:
        used_names.update(DatasetSpec.members_of(name))
        specs["dataset"][name] = dataset_spec(registry, name, set_options)
    logger_specs = tuple(component_spec(registry, "logger", name, set_options.get(name, {})) for name in loggers)
    used_names.update(loggers)

    stray = sorted(set(set_options) - used_names)
    if stray:
        raise ConfigError(
            f"--set {stray[0]}.…: no component named {stray[0]!r} in this run "
            f"(components: {', '.join(sorted(used_names))})"
        )
    if not seeds:
        seeds = [0]
    grid = []
    for dataset, encoder, text_encoder, loss, seed in itertools.product(
        datasets, encoders, text_encoders, losses, seeds
    ):
        grid.append(
            RunConfig(
                dataset=specs["dataset"][dataset],
                audio_encoder=specs["audio_encoder"][encoder],
                text_encoder=specs["text_encoder"][text_encoder],
                loss=specs["loss"][loss],
                seed=int(seed),
                train=TrainSettings(**train_kwargs),
                loggers=logger_specs,
                **common,
            )
        )
    return grid


def dataset_spec(registry: Any, name: str, set_options: dict[str, dict[str, Any]]) -> DatasetSpec:
    """The spec of a dataset or a ``a+b`` combination, with every member's options validated.

    A single dataset keeps its options flat; a combination keeps them per member (members
    without options are left out, so they do not change the combination's identity).
    """
    options: dict[str, Any] = {}
    members = DatasetSpec.members_of(name)
    for member in members:
        member_options = component_spec(registry, "dataset", member, set_options.get(member, {})).options
        if member_options:
            options[member] = member_options
    for member, member_options in options.items():
        pin_extra_captions(member, member_options)
    options = {member: member_options for member, member_options in options.items() if member_options}
    if len(members) == 1:
        options = options.get(name, {})
    return DatasetSpec(name, options)


def pin_extra_captions(member: str, options: dict[str, Any]) -> None:
    """Make ``extra_captions`` an absolute path and pin its sha256 into the options (hence into the
    combination id); a sha256 the user set must match the file."""
    extra = options.get("extra_captions")
    if not extra:
        options.pop("extra_captions", None)
        return
    path = Path(str(extra)).expanduser().resolve()
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise ConfigError(f"--set {member}.extra_captions={extra}: cannot read the file ({exc.strerror}); pass a "
                          f"CSV with columns file_name,caption") from None
    pinned = options.get("extra_captions_sha256")
    if pinned and pinned != digest:
        raise ConfigError(f"{path}: sha256 {digest[:12]}… is not the {str(pinned)[:12]}… this run was configured "
                          f"with: the file changed; restore it or start a new run")
    options["extra_captions"], options["extra_captions_sha256"] = str(path), digest


def component_spec(registry: Any, kind: str, name: str, options: dict[str, Any]) -> ComponentSpec:
    """The spec of one component, its options checked and coerced by :mod:`bench.options`."""
    return ComponentSpec(name, component_options(registry, kind, name, options))


def config_to_json(cfg: RunConfig) -> dict[str, Any]:
    """Everything needed to rebuild the RunConfig (``--resume`` reads it back)."""
    return {
        "dataset": cfg.dataset.to_json(),
        "audio_encoder": cfg.audio_encoder.to_json(),
        "text_encoder": cfg.text_encoder.to_json(),
        "loss": cfg.loss.to_json(),
        "seed": cfg.seed,
        "train": dataclasses.asdict(cfg.train),
        "device": cfg.device,
        "results_dir": str(cfg.results_dir),
        "runs_dir": str(cfg.runs_dir),
        "teachers": list(cfg.teachers),
        "init": cfg.init,
        "run_id": cfg.run_id,
        "preset": cfg.preset,
        "role": cfg.role,
        "loggers": [spec.to_json() for spec in cfg.loggers],
        **({"pipeline": cfg.pipeline} if cfg.pipeline else {}),
    }


def config_from_json(data: dict[str, Any]) -> RunConfig:
    def spec(key: str) -> ComponentSpec:
        return ComponentSpec(data[key]["name"], dict(data[key].get("options", {})))

    return RunConfig(
        dataset=DatasetSpec.of(spec("dataset")),
        audio_encoder=spec("audio_encoder"),
        text_encoder=spec("text_encoder"),
        loss=spec("loss"),
        seed=int(data["seed"]),
        train=TrainSettings(**data["train"]),
        device=data.get("device", "auto"),
        results_dir=Path(data.get("results_dir", DEFAULT_RESULTS_DIR)),
        runs_dir=Path(data.get("runs_dir", DEFAULT_RUNS_DIR)),
        teachers=tuple(data.get("teachers", ())),
        init=data.get("init"),
        run_id=data.get("run_id"),
        preset=data.get("preset"),
        role=data.get("role"),
        loggers=tuple(ComponentSpec(s["name"], dict(s.get("options", {}))) for s in data.get("loggers", ())),
        pipeline=data.get("pipeline"),
    )
