"""Dataset validation: every bad entry is named with its reason, never dropped silently.

``validate_split`` checks a list of items (files exist, stay inside the dataset root, decode,
have finite samples; captions present and not empty or punctuation-only; no duplicate ids or
files) and returns a :class:`ValidationReport`. ``apply_policy`` turns a report into either a
:class:`DataError` (``on_error="raise"``) or the kept items plus the list of skipped entries with
reasons (``on_error="skip"``), which the engine writes into the result JSON. Reports and the
policy live in :mod:`bench.data.validation_report` and are re-exported here.

Decoding every file of a large dataset takes minutes, so reports are cached in a manifest cache
(``manifests/`` under :func:`bench.core.cache_dir.cache_root`) keyed by the dataset root, its options,
the check parameters and the size and mtime of every referenced file: any change to a file
invalidates the entry.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.core.atomic import atomic_write_text
from bench.core.cache_dir import MANIFESTS, cache_root
from bench.core.progress import progress
from bench.data.audio_checks import SILENCE_PEAK, ValidationOptions, judge, options_of
from bench.data.duplicates import log_warnings as log_report_warnings
from bench.data.duplicates import mark_duplicates
from bench.data.validation_report import (
    ON_ERROR_CHOICES,
    BadEntry,
    ValidationReport,
    apply_policy,
    check_caption,
    check_on_error,
    format_bad,
    split_stats,
)

__all__ = [
    "BadEntry",
    "ValidationReport",
    "apply_policy",
    "check_caption",
    "check_on_error",
    "format_bad",
    "validate_dataset",
    "validate_split",
    "validate_split_cached",
    "ON_ERROR_CHOICES",
    "ValidationOptions",
]

# Bump when the checks change so that old cached manifests are not trusted.
_VALIDATOR_VERSION = 5  # 2: whole-file decode, content hashes, warnings; 3: SHA-256 content hash;
# 4: per-item decoded facts, so stats can be recounted after cross-split checks; 5: 10 ms minimum, short clips counted


def _escapes(path: Path, root: Path) -> bool:
    # Lexical check (no symlink resolution): users often symlink audio folders into the
    # dataset root, which is fine; a "../" in a CSV row is not.
    p = os.path.normpath(os.path.abspath(path))
    r = os.path.normpath(os.path.abspath(root))
    return os.path.commonpath([p, r]) != r


def _decode_check(path: Path, opts: ValidationOptions, target_rate: int | None) -> dict[str, Any]:
    """Decode the whole file in blocks and judge it; a dict with reason/warning/info/flags/hash."""
    from bench.data.audio import AudioError, scan_audio

    try:
        scan = scan_audio(path)
    except AudioError as exc:
        msg = str(exc)
        prefix = f"{path}: "
        return {"reason": msg[len(prefix):] if msg.startswith(prefix) else msg}
    verdict = judge(scan, opts, target_rate)
    # Silent files are all alike and already reported as silent; grouping them as identical
    # audio (or as leakage) would add noise, not information.
    digest = scan.content_hash if scan.peak >= SILENCE_PEAK else None
    return {"reason": verdict.reason, "warning": verdict.warning, "flags": verdict.flags,
            "info": (scan.decoded_frames, scan.sample_rate, scan.channels), "hash": digest}


def validate_split(items: Sequence[Any], *, sample_rate: int | None = None, root: str | os.PathLike[str] | None = None,
                   split: str = "?", decode: bool = True, expected_captions: int | None = None,
                   prior_bad: Iterable[BadEntry] = (), workers: int | None = None,
                   options: ValidationOptions | None = None) -> ValidationReport:
    """Check every item of one split and return a :class:`ValidationReport`.

    ``root``: paths that leave it (``../``) are bad. ``decode``: decode every file completely, in
    blocks, and judge it under ``options`` (:mod:`bench.data.audio_checks`: length vs header,
    non-finite samples, minimum duration, sample-rate range, silence) and hash its samples for
    the duplicate checks; otherwise only existence and size are checked.
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

    decoded: list[list[Any] | None] = [None] * len(items)
    warnings: list[BadEntry] = []
    hashes: list[str | None] = [None] * len(items)
    opts = options or ValidationOptions()
    if decode and to_decode:
        n = workers or min(8, (os.cpu_count() or 1) * 2)
        # libsndfile, hashlib and numpy release the GIL on large blocks, so threads overlap
        # I/O, decoding and hashing.
        with ThreadPoolExecutor(max_workers=n) as pool:
            results = list(progress(pool.map(lambda t: _decode_check(t[1], opts, sample_rate), to_decode),
                                    total=len(to_decode), desc=f"validating {split}", unit="file"))
        for (idx, path), res in zip(to_decode, results):
            aid = str(items[idx].audio_id)
            if res.get("hash"):
                hashes[idx] = res["hash"]
            if res["reason"] is not None:
                reject(idx, aid, str(path), res["reason"])
                continue
            frames, sr, _channels = res["info"]
            decoded[idx] = [frames / sr, sr, list(res["flags"])]
            if res["warning"]:
                warnings.append(BadEntry(split, aid, str(path), res["warning"]))

    stats: dict[str, Any] = {"decoded": bool(decode), "target_sample_rate": sample_rate,
                             **split_stats(items, bad_idx, decoded)}
    return ValidationReport(split=split, items=items, bad=bad, stats=stats, bad_indices=bad_idx,
                            warnings=warnings, hashes=hashes, decoded=decoded)


# ---------------------------------------------------------------------------------------------
# Manifest cache


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
    """:func:`validate_split` with the manifest cache; ``cache_dir=None`` uses :func:`bench.core.cache_dir.cache_root`.

    ``dataset_key`` (e.g. dataset name, root, options) goes into the key along with the check
    parameters and every file's size and mtime.
    """
    items = list(items)
    prior = list(kwargs.get("prior_bad", ()))
    params = {"v": _VALIDATOR_VERSION, "dataset": dataset_key or {}, "prior": [list(b) for b in prior],
              **{k: (str(v) if isinstance(v, os.PathLike) else v.to_dict() if isinstance(v, ValidationOptions) else v)
                 for k, v in kwargs.items() if k not in ("prior_bad", "workers")}}
    key = _manifest_key(items, params)
    path = Path(cache_dir) if cache_dir is not None else cache_root()
    path = path / MANIFESTS / f"{key}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("v") == _VALIDATOR_VERSION and data.get("n_items") == len(items):
            return ValidationReport(split=data["split"], items=items,
                                    bad=[BadEntry(**b) for b in data["bad"]], stats=data["stats"],
                                    bad_indices=set(data["bad_indices"]), from_cache=True,
                                    warnings=[BadEntry(**w) for w in data["warnings"]], hashes=data["hashes"],
                                    decoded=data["decoded"])
    except (OSError, ValueError, KeyError, TypeError):
        pass  # no entry or a damaged one: validate again and rewrite it
    report = validate_split(items, **kwargs)
    payload = {"v": _VALIDATOR_VERSION, "split": report.split, "n_items": len(items),
               "bad": [b._asdict() for b in report.bad], "stats": report.stats,
               "bad_indices": sorted(report.bad_indices),
               "warnings": [w._asdict() for w in report.warnings], "hashes": report.hashes,
               "decoded": report.decoded}
    try:
        atomic_write_text(path, json.dumps(payload))
    except OSError:
        pass  # a read-only cache must not stop a run; the report is still correct
    return report


def _policy_free(options: Any) -> Any:
    """Options without ``on_error``: the policy acts on a report but does not change it (entries
    rejected while parsing are in the key themselves), so `bench run` refused under ``raise`` and
    the full listing under ``skip`` share one manifest instead of decoding every file twice."""
    if not isinstance(options, dict):
        return options
    return {k: _policy_free(v) for k, v in options.items() if k != "on_error"}


def validate_dataset(dataset: Any, splits: Sequence[str] = ("train", "val", "test"), *,
                     sample_rate: int | None = None, root: str | os.PathLike[str] | None = None,
                     decode: bool = True, cache_dir: str | os.PathLike[str] | None | bool = None,
                     options: ValidationOptions | None = None,
                     log_warnings: bool = True) -> dict[str, ValidationReport]:
    """Validate the given splits of ``dataset``; returns ``{split: ValidationReport}``.

    ``root`` defaults to ``dataset.root`` when the dataset has one. Entries the dataset already
    skipped while parsing (its ``skipped(split)`` method, if any) are included as bad entries.
    ``cache_dir=False`` disables the manifest cache; ``None`` uses :func:`bench.core.cache_dir.cache_root`.
    ``options`` default to the dataset's own (:func:`bench.data.audio_checks.options_of`). After
    the splits are checked, identical audio is grouped (:func:`bench.data.duplicates.mark_duplicates`):
    within a split a warning, across splits a bad entry of the later split (or a warning with
    ``on_leak="warn"``). Warnings are logged, one line per kind, unless ``log_warnings=False``.
    """
    opts = options or options_of(dataset)
    if root is None:
        root = getattr(dataset, "root", None)
    reports: dict[str, ValidationReport] = {}
    for name in splits:
        items = list(dataset.split(name))
        skipped_fn = getattr(dataset, "skipped", None)
        prior = list(skipped_fn(name)) if callable(skipped_fn) else []
        kwargs: dict[str, Any] = dict(sample_rate=sample_rate, root=root, split=name, decode=decode,
                                      prior_bad=prior, options=opts)
        if cache_dir is False:
            reports[name] = validate_split(items, **kwargs)
        else:
            key = {"class": type(dataset).__qualname__, "root": str(root) if root is not None else None,
                   "options": _policy_free(getattr(dataset, "options", None))}
            reports[name] = validate_split_cached(items, cache_dir=None if cache_dir is True else cache_dir,
                                                  dataset_key=key, **kwargs)
        parse_warnings = getattr(dataset, "parse_warnings", None)  # e.g. a repeated train row, used once
        if callable(parse_warnings):
            reports[name].warnings[:0] = list(parse_warnings(name))
    mark_duplicates(reports, splits, opts.on_leak)
    if log_warnings:  # `bench validate` lists them itself
        log_report_warnings(reports.values())
    return reports
