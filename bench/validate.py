"""Dataset validation: every bad entry is named with its reason, never dropped silently.

``validate_split`` checks a list of items (files exist, stay inside the dataset root, decode,
have finite samples; captions present and not empty or punctuation-only; no duplicate ids or
files). ``apply_policy`` turns a report into either a :class:`DataError` (``on_error="raise"``)
or the kept items plus the list of skipped entries with reasons (``on_error="skip"``), which the
engine writes into the result JSON.

Decoding every file of a large dataset takes minutes, so reports are cached in a manifest cache
(``<cache_dir>/manifests/``) keyed by the dataset root, its options, the check parameters and the
size and mtime of every referenced file: any change to a file invalidates the entry.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, NamedTuple, Sequence

from bench.atomic import atomic_write_text
from bench.errors import ConfigError, DataError

__all__ = [
    "BadEntry",
    "ValidationReport",
    "apply_policy",
    "check_caption",
    "default_cache_dir",
    "validate_dataset",
    "validate_split",
    "ON_ERROR_CHOICES",
]

ON_ERROR_CHOICES = ("raise", "skip")
# Bump when the checks change so that old cached manifests are not trusted.
_VALIDATOR_VERSION = 1
_SHOW = 10  # bad entries listed in an error message before "... and N more"


class BadEntry(NamedTuple):
    """One unusable entry: the split, the audio id (or ``row N``), the file path and why."""

    split: str
    audio_id: str
    path: str
    reason: str

    def __str__(self) -> str:
        # A CSV row entry ("captions.csv line 7") already names its file; don't repeat the path.
        if not self.path or (" line " in self.audio_id and os.path.basename(self.path) in self.audio_id):
            return f"[{self.split}] {self.audio_id}: {self.reason}"
        return f"[{self.split}] {self.audio_id} ({self.path}): {self.reason}"


def check_on_error(on_error: str, who: str = "on_error") -> str:
    """Validate an ``on_error`` option value and return it."""
    if on_error not in ON_ERROR_CHOICES:
        raise ConfigError(f"{who}={on_error!r} is not valid; use one of {', '.join(ON_ERROR_CHOICES)}")
    return on_error


def check_caption(caption: Any) -> str | None:
    """Return why ``caption`` is unusable (empty, not text, only punctuation), or None if fine."""
    if not isinstance(caption, str):
        return f"caption is not text ({type(caption).__name__})"
    text = caption.strip()
    if not text:
        return "empty caption"
    if not any(ch.isalnum() for ch in text):
        return f"caption has no letters or digits ({text[:20]!r})"
    return None


@dataclass
class ValidationReport:
    """The outcome of validating one split.

    ``items`` are the items checked, ``bad`` the unusable entries (including entries a dataset
    already rejected while parsing its CSV, e.g. missing AudioCaps clips), ``stats`` durations,
    native sample rates and caption counts of the usable items.
    """

    split: str
    items: list[Any]
    bad: list[BadEntry] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    from_cache: bool = False
    bad_indices: set[int] = field(default_factory=set)  # positions in ``items`` that are bad

    @property
    def ok_items(self) -> list[Any]:
        """Items with no bad entry, in their original order."""
        return [it for i, it in enumerate(self.items) if i not in self.bad_indices]

    @property
    def ok(self) -> bool:
        """True when nothing is bad."""
        return not self.bad

    def summary(self) -> str:
        """A one-paragraph human-readable summary."""
        n_ok = len(self.ok_items)
        parts = [f"split {self.split}: {n_ok} usable item(s) of {len(self.items) + self._n_outside()}"]
        if self.bad:
            reasons = Counter(_reason_kind(b.reason) for b in self.bad)
            parts.append(f"{len(self.bad)} bad (" + ", ".join(f"{n} {r}" for r, n in reasons.most_common()) + ")")
        s = self.stats
        if s.get("duration_min") is not None:
            parts.append(f"durations {s['duration_min']:.2f}-{s['duration_max']:.2f} s "
                         f"(mean {s['duration_mean']:.2f} s, total {s['duration_total'] / 3600:.2f} h)")
        if s.get("sample_rates"):
            parts.append("sample rates " + ", ".join(f"{k} Hz x{v}" for k, v in s["sample_rates"].items()))
        if s.get("caption_counts"):
            parts.append("captions per item " + ", ".join(f"{k}: {v}" for k, v in s["caption_counts"].items()))
        if s.get("target_sample_rate"):
            parts.append(f"resampled to {s['target_sample_rate']} Hz on load")
        if self.from_cache:
            parts.append("(from manifest cache)")
        return "; ".join(parts) + "."

    def _n_outside(self) -> int:
        # Entries rejected by the dataset before becoming items are bad but not in ``items``.
        return len(self.bad) - len(self.bad_indices)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict for the results file."""
        return {
            "split": self.split,
            "n_items": len(self.items),
            "n_ok": len(self.ok_items),
            "n_bad": len(self.bad),
            "bad": [b._asdict() for b in self.bad],
            "stats": self.stats,
            "summary": self.summary(),
        }

    def to_json(self) -> str:
        """The report as a JSON string (see :meth:`to_dict`)."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


def _reason_kind(reason: str) -> str:
    r = reason.lower()
    for key, label in (("not found", "missing"), ("missing", "missing"), ("empty (0 bytes)", "empty file"),
                       ("nan", "non-finite"), ("not an audio", "not audio"), ("header", "bad header"),
                       ("duplicate", "duplicate"), ("outside", "path escapes root"),
                       ("caption", "caption problem"), ("decode", "undecodable")):
        if key in r:
            return label
    return "other"


def _escapes(path: Path, root: Path) -> bool:
    # Lexical check (no symlink resolution): users often symlink audio folders into the
    # dataset root, which is fine; a "../" in a CSV row is not.
    p = os.path.normpath(os.path.abspath(path))
    r = os.path.normpath(os.path.abspath(root))
    return os.path.commonpath([p, r]) != r


def _decode_check(path: Path, read_seconds: float) -> tuple[str | None, tuple[int, int, int] | None]:
    """Header + a bounded read. Returns (reason or None, (frames, sample_rate, channels))."""
    from bench.audio import AudioError, audio_info, load_audio

    try:
        info = audio_info(path)
        if info.frames <= 0:
            return "file holds no audio frames", None
        # Decode at the native rate (no resampling cost): we only want to know it decodes.
        load_audio(path, info.sample_rate, max_seconds=read_seconds)
    except AudioError as exc:
        msg = str(exc)
        prefix = f"{path}: "
        return (msg[len(prefix):] if msg.startswith(prefix) else msg), None
    return None, (info.frames, info.sample_rate, info.channels)


def validate_split(items: Sequence[Any], *, sample_rate: int | None = None, root: str | os.PathLike[str] | None = None,
                   split: str = "?", decode: bool = True, read_seconds: float = 1.0,
                   expected_captions: int | None = None, prior_bad: Iterable[BadEntry] = (),
                   workers: int | None = None) -> ValidationReport:
    """Check every item of one split and return a :class:`ValidationReport`.

    ``root``: paths that leave it (``../``) are bad. ``decode``: read each header and the first
    ``read_seconds`` and check the samples are finite (otherwise only existence and size).
    ``expected_captions``: exact caption count per item, else at least one. ``sample_rate`` is
    the rate audio will be resampled to; it is recorded, and native rates are summarised.
    ``prior_bad``: entries the dataset already rejected while parsing, kept in the report.
    """
    items = list(items)
    bad: list[BadEntry] = list(prior_bad)
    root_p = Path(root) if root is not None else None
    seen_ids: dict[str, int] = {}
    seen_paths: dict[str, str] = {}
    to_decode: list[tuple[int, Path]] = []
    bad_idx: set[int] = set()

    def reject(idx: int, aid: str, spath: str, reason: str) -> None:
        bad.append(BadEntry(split, aid, spath, reason))
        bad_idx.add(idx)

    for idx, it in enumerate(items):
        aid = str(getattr(it, "audio_id", ""))
        raw_path = getattr(it, "audio_path", "")
        path = Path(raw_path)
        spath = str(path)
        if not aid:
            reject(idx, f"item {idx}", spath, "empty audio_id")
            continue
        if aid in seen_ids:
            reject(idx, aid, spath, f"duplicate audio_id (first at item {seen_ids[aid]})")
            continue
        seen_ids[aid] = idx
        key = os.path.normcase(os.path.normpath(os.path.abspath(path)))
        if key in seen_paths:
            reject(idx, aid, spath, f"duplicate file name (also used by {seen_paths[key]!r})")
            continue
        seen_paths[key] = aid
        if root_p is not None and _escapes(path, root_p):
            reject(idx, aid, spath, f"path is outside the dataset root {root_p}")
            continue
        caps = getattr(it, "captions", None)
        if isinstance(caps, str) or caps is None:
            reject(idx, aid, spath, "captions must be a sequence of strings")
            continue
        caps = list(caps)
        if not caps:
            reject(idx, aid, spath, "no captions")
            continue
        if expected_captions is not None and len(caps) != expected_captions:
            reject(idx, aid, spath, f"has {len(caps)} captions, expected {expected_captions}")
            continue
        cap_problem = next(((i, r) for i, c in enumerate(caps) if (r := check_caption(c))), None)
        if cap_problem:
            reject(idx, aid, spath, f"caption {cap_problem[0] + 1}: {cap_problem[1]}")
            continue
        try:
            st = path.stat()
        except FileNotFoundError:
            reject(idx, aid, spath, "audio file not found")
            continue
        except OSError as exc:
            reject(idx, aid, spath, f"cannot access audio file ({exc.strerror})")
            continue
        if not path.is_file():
            reject(idx, aid, spath, "audio path is not a regular file")
            continue
        if st.st_size == 0:
            reject(idx, aid, spath, "audio file is empty (0 bytes)")
            continue
        to_decode.append((idx, path))

    durations: list[float] = []
    rates: Counter[int] = Counter()
    if decode and to_decode:
        n = workers or min(8, (os.cpu_count() or 1) * 2)
        # libsndfile releases the GIL while decoding, so threads overlap I/O and decoding.
        with ThreadPoolExecutor(max_workers=n) as pool:
            results = list(pool.map(lambda t: _decode_check(t[1], read_seconds), to_decode))
        for (idx, path), (reason, info) in zip(to_decode, results):
            aid = str(items[idx].audio_id)
            if reason is not None:
                reject(idx, aid, str(path), reason)
            else:
                assert info is not None
                durations.append(info[0] / info[1])
                rates[info[1]] += 1

    cap_counts = Counter(len(list(it.captions)) for i, it in enumerate(items) if i not in bad_idx)
    stats: dict[str, Any] = {
        "decoded": bool(decode),
        "target_sample_rate": sample_rate,
        "caption_counts": {str(k): v for k, v in sorted(cap_counts.items())},
        "n_captions": sum(k * v for k, v in cap_counts.items()),
    }
    if durations:
        stats.update(duration_min=min(durations), duration_max=max(durations),
                     duration_mean=sum(durations) / len(durations), duration_total=sum(durations),
                     sample_rates={str(k): v for k, v in sorted(rates.items())})
    return ValidationReport(split=split, items=items, bad=bad, stats=stats, bad_indices=bad_idx)


def apply_policy(report: ValidationReport, on_error: str) -> tuple[list[Any], list[BadEntry]]:
    """Act on a report: ``raise`` -> :class:`DataError` listing bad entries; ``skip`` -> keep the rest.

    Returns ``(kept_items, skipped_entries)``; ``skipped_entries`` is empty when nothing is bad.
    With ``skip`` the caller must record ``skipped_entries`` (the engine writes them into the
    result JSON) so that nothing disappears silently.
    """
    check_on_error(on_error)
    if not report.bad:
        return list(report.items), []
    # Entries the dataset already skipped at the user's request (``prior_bad``, not among the
    # items) are reported but do not raise again; only problems found in the items do.
    if on_error == "raise" and report.bad_indices:
        raise DataError(format_bad(_item_entries(report), report.split))
    return report.ok_items, list(report.bad)


def _item_entries(report: ValidationReport) -> list[BadEntry]:
    n_prior = len(report.bad) - len(report.bad_indices)
    return report.bad[n_prior:]


def format_bad(bad: Sequence[BadEntry], split: str = "?", show: int = _SHOW) -> str:
    """One line listing the first ``show`` bad entries and how many more there are."""
    shown = "; ".join(str(b) for b in bad[:show])
    more = f"; ... and {len(bad) - show} more" if len(bad) > show else ""
    return (f"{len(bad)} bad entr{'y' if len(bad) == 1 else 'ies'} in split {split!r}: {shown}{more}. "
            f"Fix or remove them, or pass on_error=skip to skip them (they are listed in the results).")


# ---------------------------------------------------------------------------------------------
# Manifest cache


def default_cache_dir() -> Path:
    """``$BENCH_CACHE`` if set, else ``~/.cache/bench``."""
    env = os.environ.get("BENCH_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "bench"


def _manifest_key(items: Sequence[Any], params: dict[str, Any]) -> str:
    h = hashlib.sha256()
    h.update(json.dumps(params, sort_keys=True, default=str).encode())
    for it in items:
        p = str(getattr(it, "audio_path", ""))
        try:
            st = os.stat(p)
            sig = f"{st.st_size}:{st.st_mtime_ns}"
        except OSError:
            sig = "missing"
        caps = getattr(it, "captions", None)
        caps_s = "\x1f".join(caps) if caps is not None and not isinstance(caps, str) and \
            all(isinstance(c, str) for c in caps) else repr(caps)
        h.update(f"{getattr(it, 'audio_id', '')}\x1e{p}\x1e{sig}\x1e{caps_s}\x1d".encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def validate_split_cached(items: Sequence[Any], *, cache_dir: str | os.PathLike[str] | None = None,
                          dataset_key: dict[str, Any] | None = None, **kwargs: Any) -> ValidationReport:
    """:func:`validate_split` with the manifest cache; ``cache_dir=None`` uses :func:`default_cache_dir`.

    ``dataset_key`` (e.g. dataset name, root, options) goes into the key along with the check
    parameters and every file's size and mtime.
    """
    items = list(items)
    prior = list(kwargs.get("prior_bad", ()))
    params = {"v": _VALIDATOR_VERSION, "dataset": dataset_key or {}, "prior": [list(b) for b in prior],
              **{k: (str(v) if isinstance(v, os.PathLike) else v) for k, v in kwargs.items()
                 if k not in ("prior_bad", "workers")}}
    key = _manifest_key(items, params)
    path = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = path / "manifests" / f"{key}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("v") == _VALIDATOR_VERSION and data.get("n_items") == len(items):
            return ValidationReport(split=data["split"], items=items,
                                    bad=[BadEntry(**b) for b in data["bad"]], stats=data["stats"],
                                    bad_indices=set(data["bad_indices"]), from_cache=True)
    except (OSError, ValueError, KeyError, TypeError):
        pass  # no entry or a damaged one: validate again and rewrite it
    report = validate_split(items, **kwargs)
    payload = {"v": _VALIDATOR_VERSION, "split": report.split, "n_items": len(items),
               "bad": [b._asdict() for b in report.bad], "stats": report.stats,
               "bad_indices": sorted(report.bad_indices)}
    try:
        atomic_write_text(path, json.dumps(payload))
    except OSError:
        pass  # a read-only cache must not stop a run; the report is still correct
    return report


def validate_dataset(dataset: Any, splits: Sequence[str] = ("train", "val", "test"), *,
                     sample_rate: int | None = None, root: str | os.PathLike[str] | None = None,
                     decode: bool = True, read_seconds: float = 1.0,
                     cache_dir: str | os.PathLike[str] | None | bool = None) -> dict[str, ValidationReport]:
    """Validate the given splits of ``dataset``; returns ``{split: ValidationReport}``.

    ``root`` defaults to ``dataset.root`` when the dataset has one. Entries the dataset already
    skipped while parsing (its ``skipped(split)`` method, if any) are included as bad entries.
    ``cache_dir=False`` disables the manifest cache; ``None`` uses :func:`default_cache_dir`.
    """
    if root is None:
        root = getattr(dataset, "root", None)
    reports: dict[str, ValidationReport] = {}
    for name in splits:
        items = list(dataset.split(name))
        skipped_fn = getattr(dataset, "skipped", None)
        prior = list(skipped_fn(name)) if callable(skipped_fn) else []
        kwargs: dict[str, Any] = dict(sample_rate=sample_rate, root=root, split=name, decode=decode,
                                      read_seconds=read_seconds, prior_bad=prior)
        if cache_dir is False:
            reports[name] = validate_split(items, **kwargs)
        else:
            key = {"class": type(dataset).__qualname__, "root": str(root) if root is not None else None,
                   "options": getattr(dataset, "options", None)}
            reports[name] = validate_split_cached(items, cache_dir=None if cache_dir is True else cache_dir,
                                                  dataset_key=key, **kwargs)
    return reports
