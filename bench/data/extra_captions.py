"""Extra training captions for any dataset: ``--set NAME.extra_captions=FILE.csv``.

The CSV has a header row and two columns (any others are ignored):

``file_name``  the recording, as the dataset names it (its ``audio_id``: Clotho's ``file_name``,
               e.g. ``Santa Motor.wav``; AudioCaps' path under its root; WavCaps' ``subset/id``)
``caption``    one extra caption for it; a recording may have any number of rows

The captions are appended, in file order, to the recordings' own captions in the TRAINING split
only; validation and test are untouched, so every evaluation number stays comparable. A row naming
a recording of the validation or test split, a recording the training split does not have, an
empty caption or a malformed row stops the run with one line naming the file and the row. The file's
sha256 is pinned into the run's options when the run is configured (bench.core.config), so the
combination id changes with the file's content, and a file that changed since is refused here.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.data.items import Item
from bench.errors import DataError

COLUMNS = ("file_name", "caption")


def read_extra_captions(path: Path) -> tuple[dict[str, list[str]], dict[str, int]]:
    """``({file_name: [caption, ...]}, {file_name: its first row})`` in file order; any problem is one
    :class:`DataError` line naming the file and the row."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise DataError(f"{path}: cannot read the extra captions ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 (byte {exc.start}); re-save the extra captions as UTF-8") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    captions: dict[str, list[str]] = {}
    rows: dict[str, int] = {}
    try:
        header = [h.strip() for h in next(reader, [])]
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            raise DataError(f"{path}: row 1: missing column(s) {', '.join(missing)}; the header must name "
                            f"{','.join(COLUMNS)} (found {','.join(header) or 'nothing'})")
        where = {c: header.index(c) for c in COLUMNS}
        for row in reader:
            line = reader.line_num
            if not any(field.strip() for field in row):
                continue
            if len(row) != len(header):
                raise DataError(f"{path}: row {line}: {len(row)} fields, the header has {len(header)}; "
                                f"quote captions that contain commas")
            name, caption = row[where["file_name"]].strip(), row[where["caption"]].strip()
            if not name or not caption:
                raise DataError(f"{path}: row {line}: empty {'file_name' if not name else 'caption'}")
            captions.setdefault(name, []).append(caption)
            rows.setdefault(name, line)
    except csv.Error as exc:
        raise DataError(f"{path}: row {reader.line_num}: malformed CSV ({exc}); check its quotes") from None
    return captions, rows


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class WithExtraCaptions:
    """``dataset`` whose training split has the captions of an extra-captions CSV added.

    Every other attribute is the wrapped dataset's, so validation options, ``root`` and
    ``skipped`` behave as before. ``extra_captions_info`` is what a result records.
    """

    def __init__(self, dataset: Any, path: str | Path, sha256: str | None, member: str) -> None:
        self._dataset = dataset
        self.path = Path(path)
        digest = file_sha256(self.path) if self.path.is_file() else None
        if digest is None:
            raise DataError(f"{self.path}: extra captions file not found (--set {member}.extra_captions)")
        if sha256 and digest != sha256:
            raise DataError(f"{self.path}: sha256 {digest[:12]}… is not the {sha256[:12]}… this run was configured "
                            f"with: the file changed; restore it or start a new run")
        self.sha256 = digest
        self.member = member
        self._captions, self._rows = read_extra_captions(self.path)
        self._train: list[Any] | None = None

    def __getattr__(self, attr: str) -> Any:
        if attr == "_dataset":
            raise AttributeError(attr)
        return getattr(self._dataset, attr)

    @property
    def options(self) -> Any:
        """The dataset's options and the file's hash (cache keys must tell the two training sets apart)."""
        inner = getattr(self._dataset, "options", None)
        return {**(inner if isinstance(inner, dict) else {"dataset": inner}), "extra_captions_sha256": self.sha256}

    def split(self, name: str) -> list[Any]:
        if name != "train":
            return list(self._dataset.split(name))
        if self._train is None:
            self._train = self._add(list(self._dataset.split("train")))
        return list(self._train)

    def _add(self, train: list[Any]) -> list[Any]:
        ids = {str(item.audio_id) for item in train}
        for name in self._captions:
            if name in ids:
                continue
            for other in ("val", "test"):
                if name in {str(item.audio_id) for item in self._dataset.split(other)}:
                    raise DataError(f"{self.path}: row {self._row_of(name)}: {name!r} is in the {other} split of "
                                    f"{self.member}; extra captions may only be added to training recordings")
            raise DataError(f"{self.path}: row {self._row_of(name)}: unknown file_name {name!r}: not a recording "
                            f"of {self.member}'s training split (e.g. {sorted(ids)[0] if ids else 'none'!r})")
        return [_with(item, self._captions.get(str(item.audio_id), ())) for item in train]

    def _row_of(self, name: str) -> int:
        return self._rows[name]

    @property
    def extra_captions_info(self) -> dict[str, Any]:
        return {"file": str(self.path), "sha256": self.sha256,
                "n_captions": sum(len(c) for c in self._captions.values()), "n_audios": len(self._captions)}

    def __repr__(self) -> str:
        return f"WithExtraCaptions({self._dataset!r}, {str(self.path)!r})"


def _with(item: Any, extra: Any) -> Any:
    if not extra:
        return item
    captions = (*tuple(item.captions), *extra)
    if isinstance(item, Item):
        return replace(item, captions=captions)
    return Item(audio_id=item.audio_id, audio_path=item.audio_path, captions=captions,
                meta=dict(getattr(item, "meta", {}) or {}))


def extra_captions_info(dataset: Any) -> dict[str, Any]:
    """``{member: {file, sha256, n_captions, n_audios}}`` of a built dataset (a combination's members too)."""
    members = list(zip(getattr(dataset, "names", ()), getattr(dataset, "datasets", ()))) or [(None, dataset)]
    out = {}
    for name, member in members:
        if isinstance(member, WithExtraCaptions):
            out[name or member.member] = member.extra_captions_info
    return out
