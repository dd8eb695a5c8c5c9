"""Shared pieces of the file-based dataset plugins: root lookup, strict CSV reading, split caching.

Imported lazily by the plugin factories (never at plugin-module import time), so it may import
bench's validation code freely.
"""

from __future__ import annotations

import csv
import itertools
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from bench.errors import ConfigError, DataError
from bench.toolkit import BadEntry, Item, check_on_error, format_bad, validate_split

SPLITS = ("train", "val", "test")


def resolve_root(dataset: str, root: str | os.PathLike[str] | None, *, subdir: str | None = None,
                 option: str = "root") -> Path:
    """The dataset directory: ``root`` if given, else ``$BENCH_DATA/<subdir>``; it must exist."""
    hint = f"pass --set {dataset}.{option}=DIR" + (" or set BENCH_DATA" if subdir else "")
    if root in (None, ""):
        base = os.environ.get("BENCH_DATA")
        if not subdir or not base:
            raise ConfigError(f"{dataset}: dataset directory not set; {hint}")
        path = Path(base).expanduser() / subdir
    else:
        path = Path(root).expanduser()
    if not path.is_dir():
        raise ConfigError(f"{dataset}: dataset directory {path} does not exist; {hint}")
    return path


def read_text(path: Path, encoding: str = "utf-8", *, what: str = "file") -> str:
    """Read a whole text file; a decoding problem becomes a one-line :class:`DataError`."""
    data = _read_bytes(path, what)
    enc = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
    try:
        return data.decode(enc)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}: line {line} is not valid {encoding} (byte 0x{data[exc.start]:02x}); "
                        f"re-save the {what} as {encoding}") from None


def _read_bytes(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: {what} not found") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read {what} ({exc.strerror})") from None


def _lines(path: Path, encoding: str, what: str,
           on_error: str) -> list[tuple[int, str | None, str | None]]:
    """``(line number, text or None, problem)`` of each physical line, decoded one by one, so one
    bad byte costs its line (under ``on_error="skip"``), not the file. For ASCII-compatible
    encodings (UTF-8, ISO-8859-1, cp1252: those of the datasets' CSVs)."""
    data = _read_bytes(path, what)
    utf8 = encoding.lower().replace("_", "-") in ("utf-8", "utf8")
    out: list[tuple[int, str | None, str | None]] = []
    for number, raw in enumerate(data.splitlines(keepends=True), 1):
        try:
            out.append((number, raw.decode("utf-8-sig" if utf8 and number == 1 else encoding), None))
        except UnicodeDecodeError as exc:
            problem = f"is not valid {encoding} (byte 0x{raw[exc.start]:02x})"
            if on_error != "skip" or not out:  # a bad header line leaves nothing to read
                raise DataError(f"{path}: line {number} {problem}; re-save the {what} as {encoding}") from None
            out.append((number, None, f"line {problem}"))
    return out


def read_csv(path: Path, required: Sequence[str], *, encoding: str = "utf-8", what: str = "CSV file",
             on_error: str = "raise") -> Iterator[tuple[int, dict[str, str] | None, str | None]]:
    """Yield ``(line_number, row_dict, problem)`` for each data row of a headed CSV file.

    Parsing is strict (``csv`` ``strict=True``): a stray or unbalanced quote is an error at the
    line where its record starts, never a field that swallows the following rows. Missing
    required columns raise :class:`DataError` naming the file and the columns. A row with the
    wrong number of fields yields ``(line, None, reason)`` so the caller can report it; so do a
    quoting error and an undecodable line under ``on_error="skip"`` (the rest of the file is
    read: parsing restarts on the next line), where ``"raise"`` raises :class:`DataError` naming
    the line.
    """
    lines = _lines(path, encoding, what, on_error)
    if not lines or not lines[0][1] or not lines[0][1].strip():
        raise DataError(f"{path}: {what} is empty; expected a header row with {','.join(required)}")
    try:
        header = next(csv.reader([lines[0][1]], strict=True))
    except csv.Error as exc:
        raise DataError(f"{path}: line 1: malformed CSV ({exc})") from None
    header = [h.strip() for h in header]
    missing = [c for c in required if c not in header]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}; expected columns "
                        f"{','.join(required)} (found {','.join(header) or 'none'})")
    n = len(header)
    index = 1
    while index < len(lines):
        line, text, problem = lines[index]
        if text is None:
            yield line, None, problem
            index += 1
            continue
        if not text.strip():
            index += 1  # blank lines carry no entry
            continue
        # A record may span lines only inside a quoted field, and never across an undecodable line.
        following = (t for _, t, _ in lines[index:])
        reader = csv.reader(itertools.takewhile(lambda t: t is not None, following), strict=True)
        try:
            row = next(reader)
        except csv.Error as exc:
            if on_error != "skip":
                raise DataError(f"{path}: line {line}: malformed CSV ({exc}); check its quotes") from None
            yield line, None, f"malformed CSV ({exc})"
            index += 1
            continue
        index += reader.line_num
        if len(row) != n:
            yield line, None, f"has {len(row)} fields, header has {n}"
            continue
        yield line, dict(zip(header, row)), None


class CaptionDataset:
    """Base class: ``split(name)`` parses once, checks structure, applies ``on_error``.

    Subclasses implement :meth:`_parse` returning items, entries rejected while parsing and the
    expected captions per item. ``split`` then checks (without decoding) that files exist, stay
    in the root, are unique and have usable captions; bad entries raise :class:`DataError` or,
    with ``on_error="skip"``, are kept in :meth:`skipped` for the results file.
    """

    name = "dataset"
    splits: tuple[str, ...] = SPLITS

    def __init__(self, root: str | os.PathLike[str], on_error: str = "raise") -> None:
        # Absolute so that item paths stay valid if the working directory changes (DataLoader workers).
        self.root = Path(os.path.abspath(Path(root).expanduser()))
        self.on_error = check_on_error(on_error, f"{self.name}.on_error")
        self._cache: dict[str, list[Item]] = {}
        self._skipped: dict[str, list[BadEntry]] = {}
        self._row_warnings: dict[str, list[BadEntry]] = {}

    @property
    def options(self) -> dict[str, Any]:
        """The options that define this dataset (used in cache keys and result files)."""
        return {"root": str(self.root), "on_error": self.on_error}

    def _parse(self, split: str) -> tuple[list[Item], list[BadEntry], int | None]:
        raise NotImplementedError

    def _check_split_name(self, split: str) -> None:
        if split not in self.splits:
            raise ConfigError(f"{self.name}: unknown split {split!r}; use one of {', '.join(self.splits)}")

    def split(self, name: str) -> list[Item]:
        """The usable items of split ``name`` ("train", "val" or "test")."""
        self._check_split_name(name)
        if name not in self._cache:
            items, prior, expected = self._parse(name)
            report = validate_split(items, root=self.root, split=name, decode=False,
                                    expected_captions=expected)
            bad = prior + report.bad
            if bad and self.on_error == "raise":
                raise DataError(format_bad(bad, name))
            self._cache[name] = report.ok_items
            self._skipped[name] = bad
        return list(self._cache[name])

    def skipped(self, name: str) -> list[BadEntry]:
        """Entries of split ``name`` dropped under ``on_error="skip"``, each with its reason."""
        self.split(name)
        return list(self._skipped.get(name, []))

    def parse_warnings(self, name: str) -> list[BadEntry]:
        """Usable entries of split ``name`` worth a look that parsing found (repeated train rows)."""
        self.split(name)
        return list(self._row_warnings.get(name, []))

    def _repeated_row(self, seen: dict[Any, int], key: Any, line: int, split: str, where: str, path: Path,
                      what: str, bad: list[BadEntry]) -> bool:
        """True when the row at ``line`` repeats ``key`` (file and caption) of an earlier row.

        Both line numbers are named. In train the repeat is a counted warning and the row is
        ignored (the caption is trained once); in val and test it is a bad entry, because it would
        count a query twice.
        """
        first = seen.setdefault(key, line)
        if first == line:
            return False
        if split == "train":
            self._row_warnings.setdefault(split, []).append(
                BadEntry(split, where, str(path), f"duplicated row: {what} is also at line {first}; used once"))
        else:
            bad.append(BadEntry(split, where, str(path), f"duplicated row: {what} is also at line {first}; "
                                f"in {split} it would count a query twice; remove one of the rows"))
        return True

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={str(self.root)!r}, on_error={self.on_error!r})"
