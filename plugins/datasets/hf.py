"""The ``huggingface`` dataset: audio and captions from a Hugging Face ``datasets`` dataset.

``--dataset huggingface --set huggingface.path=ID_OR_DIR``: a hub id (``org/name``, at
``huggingface.revision``), a directory written by ``save_to_disk``, or a directory of data files
(parquet, ...) that ``load_dataset`` reads. (Named ``huggingface``, not ``hf``: ``hf`` is a text
encoder, and ``--set hf.KEY=...`` goes to every component of that name in a run.)

- ``audio_column`` (default ``audio``): an ``Audio`` feature, or a string column of file paths.
  The library never decodes it (``Audio(decode=False)``): its bytes are written once to
  ``$BENCH_CACHE/huggingface/<fingerprint>/<split>/<row>.<ext>`` and decoded by bench's own reader,
  so validation, resampling and ``on_error`` are the same as for every other dataset.
- ``caption_columns`` (default ``caption``): comma-separated string columns (``caption_1,...``),
  or one column holding a list of captions per row.
- ``id_column`` (default none): rows with the same value here are one recording whose captions are
  gathered (mirrors of AudioCaps often hold one row per caption); the first row's audio is used.
- ``split_map``: ``train:development,val:validation,test:evaluation`` maps bench's splits to the
  dataset's; by default ``train``, ``validation``/``valid``/``val``/``development`` and
  ``test``/``evaluation`` are recognised.

An item's ``audio_id`` is ``<split>[<row>]`` (the dataset's split name and row index), so a row
with undecodable audio is named by both. Offline, a hub id that is not cached fails at once with
one line saying how to pass a local directory.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Literal

from bench import hookimpl
from bench.toolkit import missing_package

DEFAULT_SPLITS = {
    "train": ("train", "development", "dev"),
    "val": ("validation", "valid", "val"),
    "test": ("test", "evaluation", "eval"),
}
_MAGIC = ((b"RIFF", ".wav"), (b"fLaC", ".flac"), (b"OggS", ".ogg"), (b"ID3", ".mp3"), (b"\xff\xfb", ".mp3"))


@hookimpl
def register_datasets(register: Any) -> None:
    """Register the ``huggingface`` dataset."""
    register("huggingface", build_huggingface)


def build_huggingface(path: str = "", audio_column: str = "audio", caption_columns: str = "caption",
                      split_map: str = "", revision: str | None = None, id_column: str = "",
                      on_error: Literal["raise", "skip"] = "raise") -> Any:
    """A Hugging Face dataset (hub id or local directory) read without the library decoding audio."""
    from bench.errors import ConfigError

    if not path:
        raise ConfigError("huggingface: no dataset given; pass --set huggingface.path=HUB_ID_OR_LOCAL_DIR")
    captions = tuple(c.strip() for c in caption_columns.split(",") if c.strip())
    if not captions:
        raise ConfigError("huggingface.caption_columns is empty; name one or more caption columns")
    return HuggingFaceDataset(path, audio_column=audio_column, caption_columns=captions,
                              split_map=parse_split_map(split_map), revision=revision, id_column=id_column,
                              on_error=on_error)


def parse_split_map(text: str) -> dict[str, str]:
    """``"train:development,val:validation"`` -> ``{"train": "development", "val": "validation"}``."""
    from bench.errors import ConfigError

    out: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        ours, sep, theirs = part.partition(":")
        if not sep or ours.strip() not in DEFAULT_SPLITS or not theirs.strip():
            raise ConfigError(f"huggingface.split_map: {part!r} is not BENCH_SPLIT:DATASET_SPLIT with BENCH_SPLIT "
                              f"one of train, val, test (e.g. train:development,val:validation,test:evaluation)")
        out[ours.strip()] = theirs.strip()
    return out


def _looks_local(path: str) -> bool:
    """A path rather than a hub id (``ORG/NAME``): looked up on disk only, never on the hub."""
    return path.startswith((".", "/", "~")) or path.count("/") > 1


def preflight(path: str = "", split_map: str = "", **_: Any) -> list[str]:
    """Torch-free checks for ``bench.core.preflight``: the package, the path and the split map, before any work."""
    from bench.errors import ConfigError

    problems = missing_package("datasets", "'bench[hf]'")
    if not path:
        problems.append("huggingface: no dataset given; pass --set huggingface.path=HUB_ID_OR_LOCAL_DIR")
    elif _looks_local(path) and not Path(path).expanduser().is_dir():
        problems.append(f"huggingface: directory {Path(path).expanduser()} does not exist; pass "
                        "--set huggingface.path=DIR (a save_to_disk or parquet directory) or a hub id ORG/NAME")
    try:
        parse_split_map(split_map)
    except ConfigError as exc:
        problems.append(str(exc))
    return problems


build_huggingface.preflight = preflight  # type: ignore[attr-defined]


def _hub_reachable(endpoint: str) -> bool:
    import socket
    from urllib.parse import urlparse

    host = urlparse(endpoint).hostname or ""
    try:
        socket.getaddrinfo(host, 443)
    except OSError:
        return False
    return True


def load(path: str, revision: str | None) -> Any:
    """The ``DatasetDict`` at ``path``: a ``save_to_disk`` directory, a data-file directory or a hub id."""
    from bench.errors import ConfigError

    try:
        import datasets
    except ImportError:
        raise ConfigError("the huggingface dataset needs the datasets package: pip install 'bench[hf]'") from None

    local = Path(path).expanduser()
    if local.is_dir():
        if (local / "dataset_dict.json").is_file() or (local / "state.json").is_file():
            loaded = datasets.load_from_disk(str(local))
        else:
            loaded = datasets.load_dataset(str(local))
        if isinstance(loaded, datasets.Dataset):
            raise ConfigError(f"huggingface: {local} holds a single split; save a DatasetDict with train, "
                              "validation and test splits")
        return loaded
    if _looks_local(path):
        raise ConfigError(f"huggingface: directory {local} does not exist; pass --set huggingface.path=DIR "
                          "(a save_to_disk or parquet directory) or a hub id ORG/NAME")
    import huggingface_hub.constants as hub

    if not hub.HF_HUB_OFFLINE and not _hub_reachable(hub.ENDPOINT):
        # No network: look only in the local cache instead of retrying the hub for half a minute.
        datasets.config.HF_HUB_OFFLINE = hub.HF_HUB_OFFLINE = True
    hint = (f"download it where the hub is reachable (datasets.load_dataset({path!r}).save_to_disk(DIR)) and pass "
            "--set huggingface.path=DIR")
    try:
        return datasets.load_dataset(path, revision=revision)
    except (ConnectionError, FileNotFoundError) as exc:
        offline = hub.HF_HUB_OFFLINE
        reason = "offline and not in the local Hugging Face cache" if offline else " ".join(str(exc).split())[:160]
        raise ConfigError(f"huggingface: cannot load {path!r}: {reason}; {hint}") from None


class HuggingFaceDataset:
    """``split(name)`` returns items whose audio is a file bench decodes itself (see the module doc)."""

    name = "huggingface"

    def __init__(self, path: str, *, audio_column: str, caption_columns: tuple[str, ...],
                 split_map: dict[str, str], revision: str | None, on_error: str, id_column: str = "") -> None:
        from bench_plugins.datasets._common import CaptionDataset

        self.path, self.revision = path, revision
        self.audio_column, self.caption_columns, self.id_column = audio_column, caption_columns, id_column
        self.data = load(path, revision)
        self.split_names = {ours: self._dataset_split(ours, split_map.get(ours)) for ours in DEFAULT_SPLITS}
        fingerprint = hashlib.sha256(repr((audio_column, caption_columns, id_column, sorted(
            (s, self.data[s]._fingerprint) for s in self.split_names.values()))).encode()).hexdigest()[:16]
        from bench.toolkit import cache_path

        reader = self

        class _Splits(CaptionDataset):
            name = "huggingface"

            def _parse(self, split: str) -> tuple[list[Any], list[Any], int | None]:
                items, bad = reader._materialise(split, self.root)
                return items, bad, None

        self._splits = _Splits(cache_path("huggingface", fingerprint), on_error)
        self.root = self._splits.root
        self.on_error = self._splits.on_error

    @property
    def options(self) -> dict[str, Any]:
        """The options that define this dataset (cache keys, result files)."""
        return {"path": self.path, "revision": self.revision, "audio_column": self.audio_column,
                "caption_columns": ",".join(self.caption_columns), "id_column": self.id_column,
                "split_map": ",".join(f"{k}:{v}" for k, v in self.split_names.items()), "on_error": self.on_error}

    def _dataset_split(self, ours: str, theirs: str | None) -> str:
        from bench.errors import ConfigError

        available = list(self.data)
        if theirs is not None and theirs in available:
            return theirs
        if theirs is None:
            found = next((c for c in DEFAULT_SPLITS[ours] if c in available), None)
            if found:
                return found
        wanted = theirs or "/".join(DEFAULT_SPLITS[ours])
        raise ConfigError(f"huggingface: {self.path} has no split {wanted!r} for bench's {ours} split (splits: "
                          f"{', '.join(available)}); pass --set huggingface.split_map=train:A,val:B,test:C")

    def _columns(self, theirs: str) -> Any:
        import datasets

        from bench.errors import DataError

        split = self.data[theirs]
        wanted = [self.audio_column, *self.caption_columns, *([self.id_column] if self.id_column else [])]
        missing = [c for c in wanted if c not in split.column_names]
        if missing:
            option = {self.audio_column: "audio_column", self.id_column: "id_column"}.get(missing[0], "caption_columns")
            raise DataError(f"huggingface: split {theirs!r} of {self.path} has no column {missing[0]!r} (columns: "
                            f"{', '.join(split.column_names)}); pass --set huggingface.{option}=...")
        split = split.select_columns(wanted)
        if isinstance(split.features[self.audio_column], datasets.Audio):
            split = split.cast_column(self.audio_column, datasets.Audio(decode=False))
        return split

    def _audio_file(self, value: Any, theirs: str, row: int, root: Path) -> tuple[Path | None, str | None]:
        """Where row ``row``'s audio is on disk (written from its bytes if needed), or why there is none."""
        from bench.toolkit import atomic_write_bytes

        if isinstance(value, str):
            value = {"bytes": None, "path": value}
        if not isinstance(value, dict):
            return None, f"audio column holds {type(value).__name__}, not audio bytes or a path"
        data, source = value.get("bytes"), value.get("path")
        target = root / theirs / f"{row:06d}"
        if data:
            suffix = Path(source or "").suffix.lower() or next((s for m, s in _MAGIC if data.startswith(m)), ".bin")
            path = target.with_suffix(suffix)
            if not path.is_file() or path.stat().st_size != len(data):
                atomic_write_bytes(path, data)
            return path, None
        if not source:
            return None, "no audio bytes and no path"
        original = Path(source).expanduser()
        if not original.is_absolute():
            original = Path(self.path).expanduser().absolute() / original
        # A link inside the cache root: the item stays under the dataset root that validation checks.
        path = target.with_suffix(original.suffix)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink() or path.exists():
            path.unlink()
        path.symlink_to(original.absolute())
        return path, None

    def _materialise(self, ours: str, root: Path) -> tuple[list[Any], list[Any]]:
        from bench.toolkit import BadEntry, Item

        theirs = self.split_names[ours]
        split = self._columns(theirs)
        groups: dict[Any, dict[str, Any]] = {}  # recording -> its first row, audio file (or problem), captions
        for row, record in enumerate(split):
            key = record[self.id_column] if self.id_column else row
            captions = [record[c] for c in self.caption_columns]
            if len(captions) == 1 and isinstance(captions[0], (list, tuple)):
                captions = list(captions[0])
            if key not in groups:
                path, problem = self._audio_file(record[self.audio_column], theirs, row, root)
                groups[key] = {"row": row, "path": path, "problem": problem, "captions": []}
            groups[key]["captions"] += captions
        items, bad = [], []
        for key, group in groups.items():
            audio_id, captions, problem = f"{theirs}[{group['row']}]", group["captions"], group["problem"]
            if problem is None and not all(isinstance(c, str) for c in captions):
                problem = f"captions must be strings (columns {', '.join(self.caption_columns)})"
            if problem is not None:
                bad.append(BadEntry(ours, audio_id, str(group["path"] or self.path), problem))
                continue
            meta = {"split": theirs, "row": group["row"], **({"id": key} if self.id_column else {})}
            items.append(Item.from_source(audio_id, group["path"], captions, meta))
        return items, bad

    def split(self, name: str) -> list[Any]:
        """The usable items of bench's split ``name`` (``train``, ``val`` or ``test``)."""
        return self._splits.split(name)

    def skipped(self, name: str) -> list[Any]:
        """Entries of split ``name`` dropped under ``on_error="skip"``, each with its reason."""
        return self._splits.skipped(name)

    def __repr__(self) -> str:
        return f"HuggingFaceDataset(path={self.path!r}, splits={self.split_names})"
