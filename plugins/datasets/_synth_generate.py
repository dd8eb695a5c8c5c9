"""Writing the ``synthetic`` dataset to disk in ClothoV2's layout, cached and resumable.

Layout under the root (ClothoV2's, see plugins/datasets/clotho.py)::

    development/ validation/ evaluation/        <folder>_<index:05d>.wav, 16 kHz mono PCM_16
    clotho_captions_<folder>.csv                file_name,caption_1..caption_5 (UTF-8)
    clotho_metadata_<folder>.csv                ISO-8859-1, one row per clip (see METADATA_COLUMNS)
    .synthetic-options.json                     written first: the options this root is for
    .synthetic-complete.json                    written last: the root is complete and usable

Ground truth: ``clotho_metadata_<folder>.csv`` has, besides Clotho's own columns (``sound_id``,
``keywords``, ...), ``duration_s``, ``background``, ``n_events`` and ``events``: a JSON list with
one object per event: ``type``, ``loudness``, ``duration`` (null for knocks), ``position``,
``repetitions``, ``event_duration_s``, ``gap_s``, ``onsets_s`` (seconds), ``peak`` (linear peak
amplitude before mixing) and ``params`` (frequencies in Hz, rates in Hz).

Safety: every file is written to a temporary name in its folder and ``os.replace``-d, so a file
with its final name is always whole. An exclusive lock (``.synthetic.lock``) serialises
generators of one root; the completion marker is written last, so a root without it (a killed
generation) is never used as is: the next call re-checks every wav (size from the clip's spec),
renders the missing or damaged ones (identical bytes, since every clip has its own RNG) and
rewrites the CSVs before the marker.

Verification: the marker records every wav's size and CRC-32 (zlib), and every call checks them
(reading a cached root costs one pass over its bytes at several GB/s). A wav that is missing,
truncated or overwritten is named in the log, rendered again (identical bytes) and counted, so a
damaged cache never changes a run's metrics silently.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import logging
import os
import time
import wave
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.errors import DataError
from bench.toolkit import as_disk_full
from bench_plugins.datasets._synth_events import SAMPLE_RATE, ClipSpec, render_clip, sample_clip

GENERATOR_VERSION = 2
"""Bump when the generated files change; it is part of the cache fingerprint."""

SPLITS: dict[str, tuple[str, int]] = {"train": ("development", 0), "val": ("validation", 1),
                                      "test": ("evaluation", 2)}
OPTIONS_FILE = ".synthetic-options.json"
MARKER_FILE = ".synthetic-complete.json"
LOCK_FILE = ".synthetic.lock"
WAV_HEADER_BYTES = 44  # the stdlib ``wave`` writer's canonical RIFF header
METADATA_COLUMNS = ("file_name", "keywords", "sound_id", "sound_link", "start_end_samples",
                    "manufacturer", "license", "duration_s", "background", "n_events", "events")
SOUND_ID_BASE = 900_000_000  # far above real Freesound ids, so no exclusion list ever matches
log = logging.getLogger("bench")


def options_dict(n_train: int, n_val: int, n_test: int, seed: int) -> dict[str, int]:
    """The options that determine the generated files, with the generator version."""
    return {"n_train": int(n_train), "n_val": int(n_val), "n_test": int(n_test), "seed": int(seed),
            "version": GENERATOR_VERSION}


def fingerprint(n_train: int, n_val: int, n_test: int, seed: int) -> str:
    """A short hash of :func:`options_dict`: the cache directory's name."""
    blob = json.dumps(options_dict(n_train, n_val, n_test, seed), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def default_root(fp: str) -> Path:
    """``synthetic/<fp>`` under bench's cache root (:func:`bench.core.cache_dir.cache_root`)."""
    from bench.toolkit import SYNTHETIC, cache_path

    return cache_path(SYNTHETIC, fp)


def file_name(folder: str, index: int) -> str:
    """The wav name of clip ``index`` of a split folder."""
    return f"{folder}_{index:05d}.wav"


def clip_specs(n: int, split: str, seed: int) -> list[ClipSpec]:
    """The specs of the first ``n`` clips of ``split`` (no audio is made)."""
    code = SPLITS[split][1]
    return [sample_clip(seed, code, i) for i in range(n)]


# ----------------------------------------------------------------------------------- file output


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp.{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError as exc:  # a full disk: one line naming the file
        raise as_disk_full(exc, path) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def wav_bytes(samples: Any) -> bytes:
    """A 16 kHz mono PCM_16 wav file; ``wave`` writes a fixed header, so bytes are reproducible."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(samples.astype("<i2").tobytes())
    return buf.getvalue()


def _render_to(job: tuple[ClipSpec, str]) -> str:
    spec, path = job
    _atomic_write_bytes(Path(path), wav_bytes(render_clip(spec)))
    return path


def _worker_main() -> None:
    """Entry of a rendering worker process: render the ``[seed, split_code, index, path]`` jobs
    read as JSON from stdin."""
    import sys

    for seed, code, index, path in json.loads(sys.stdin.read()):
        _render_to((sample_clip(seed, code, index), path))


def _render_jobs(root: Path, jobs: list[tuple[ClipSpec, str]], n_proc: int) -> None:
    """Render the jobs here and in ``n_proc - 1`` worker processes.

    The workers are fresh interpreters (``python -c``), not ``multiprocessing`` children: the
    spawn and forkserver methods re-import the caller's main script, which deadlocks (or
    recurses) when a user's script without a ``__main__`` guard builds this dataset, and fork
    copies the caller's threads (torch) into the child.
    """
    import subprocess
    import sys

    if n_proc <= 1 or not sys.executable:
        for job in jobs:
            _render_to(job)
        return
    here = Path(__file__).resolve().parents[2]  # the directory that holds the plugins package
    import bench

    paths = [str(here), str(Path(bench.__file__).resolve().parents[1])]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(paths + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    shares = [jobs[w::n_proc] for w in range(n_proc)]
    procs = []
    try:
        for share in shares[1:]:
            proc = subprocess.Popen(
                [sys.executable, "-c",
                 "from bench_plugins.datasets._synth_generate import _worker_main; _worker_main()"],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
            procs.append(proc)
            payload = json.dumps([[s.seed, s.split_code, s.index, path] for s, path in share])
            assert proc.stdin is not None
            try:
                proc.stdin.write(payload.encode())
                proc.stdin.close()
            except BrokenPipeError:  # the worker died at start; its stderr says why
                pass
        for job in shares[0]:
            _render_to(job)
        for proc in procs:
            assert proc.stderr is not None
            err = proc.stderr.read()  # a worker writes there only when it fails
            proc.wait()
            if proc.returncode != 0:
                tail = err.decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
                raise DataError(f"{root}: a rendering worker failed ({tail[0]}); "
                                f"run again to resume, or pass workers=1")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stderr is not None:
                proc.stderr.close()


def _csv_bytes(header: tuple[str, ...] | list[str], rows: list[list[Any]], encoding: str) -> bytes:
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().encode(encoding)


def captions_rows(specs: list[ClipSpec], folder: str) -> list[list[str]]:
    """Rows of ``clotho_captions_<folder>.csv``."""
    from bench_plugins.datasets._synth_captions import make_captions

    return [[file_name(folder, s.index), *make_captions(s)] for s in specs]


def metadata_rows(specs: list[ClipSpec], folder: str) -> list[list[Any]]:
    """Rows of ``clotho_metadata_<folder>.csv`` (columns :data:`METADATA_COLUMNS`)."""
    rows = []
    for s in specs:
        keywords = ";".join(e.type for e in s.events)
        sound_id = SOUND_ID_BASE + s.split_code * 1_000_000 + s.index
        rows.append([file_name(folder, s.index), keywords, sound_id, "", f"[0, {s.n_samples}]",
                     "bench synthetic generator", "CC0", f"{s.duration_s:.2f}", s.background,
                     len(s.events), json.dumps(s.events_json(), sort_keys=True, separators=(",", ":"))])
    return rows


# ----------------------------------------------------------------------------------- locking


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if needed) across processes."""
    fh = open(path, "a+b")
    try:
        try:
            import fcntl
        except ImportError:  # Windows
            import msvcrt

            while True:
                try:
                    msvcrt.locking(fh.fileno(), msvcrt.LK_LOCK, 1)
                    break
                except OSError:
                    time.sleep(0.5)
            try:
                yield
            finally:
                fh.seek(0)
                msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)
        else:
            waited = 0.0
            while True:
                try:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if waited == 5.0:  # say why we sit still; a hung holder would look like our hang
                        print(f"synthetic: waiting for another process that is generating {path.parent}",
                              flush=True)
                    time.sleep(0.25)
                    waited += 0.25
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    finally:
        fh.close()


# ----------------------------------------------------------------------------------- generation


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


def file_checksum(path: Path) -> list[int]:
    """``[size, crc32]`` of a file's bytes (what the marker records for every wav)."""
    data = path.read_bytes()
    return [len(data), zlib.crc32(data)]


def damaged_files(root: Path, marker: dict[str, Any]) -> dict[str, str]:
    """``{relative path: problem}`` of the wavs that differ from the marker's record."""
    bad: dict[str, str] = {}
    for name, (size, crc) in (marker.get("files") or {}).items():
        actual = file_checksum(root / name) if (root / name).is_file() else [-1, 0]
        if actual[0] != size:
            bad[name] = "missing" if actual[0] < 0 else f"{actual[0]} bytes, {size} were written"
        elif actual[1] != crc:
            bad[name] = f"checksum mismatch (crc32 {actual[1]:08x}, written {crc:08x})"
    return bad


def is_complete(root: Path, opts: dict[str, int]) -> bool:
    """Whether ``root`` holds a finished generation for exactly these options, every wav intact.

    Damaged wavs are named in the log (the caller regenerates them); a marker of an older
    bench without checksums counts as incomplete, so the next generation records them.
    """
    marker = _read_json(root / MARKER_FILE)
    if marker is None:
        return False
    if marker.get("options") != opts:
        raise DataError(f"{root}: holds a synthetic dataset made with other options "
                        f"({marker.get('options')}, wanted {opts}); delete it or pass another root")
    if not marker.get("files"):
        return False
    bad = damaged_files(root, marker)
    for name, problem in sorted(bad.items()):
        log.warning("synthetic: %s is damaged (%s); regenerating it", root / name, problem)
    return not bad


def _check_ownership(root: Path, opts: dict[str, int]) -> None:
    found = _read_json(root / OPTIONS_FILE)
    if found is None:
        others = [p.name for p in root.iterdir() if p.name != LOCK_FILE]
        if others:
            raise DataError(f"{root}: directory is not empty and was not made by the synthetic "
                            f"generator (found {sorted(others)[:3]}); pass a new or empty root")
    elif found != opts:
        raise DataError(f"{root}: holds an unfinished synthetic dataset made with other options "
                        f"({found}, wanted {opts}); delete it or pass another root")


def _workers(requested: int, n_jobs: int) -> int:
    if requested > 0:
        return requested
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    # Starting a process costs about as much as rendering a few dozen clips.
    return max(1, min(cpus, n_jobs // 64))


def generate(root: str | os.PathLike[str], n_train: int = 1000, n_val: int = 200, n_test: int = 200,
             seed: int = 0, workers: int = 0, progress: bool = False) -> Path:
    """Make sure ``root`` holds the complete dataset for these options; return the root.

    A complete root is returned at once. Otherwise, under the root's lock, the missing or damaged
    wav files are rendered (in ``workers`` processes; 0 picks by CPU count and size), the CSVs
    are rewritten and the completion marker is written last.
    """
    for name, value in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test)):
        if int(value) < 1:
            from bench.errors import ConfigError

            raise ConfigError(f"synthetic: {name}={value} must be at least 1; pass --set synthetic.{name}=N")
    root = Path(root).expanduser()
    opts = options_dict(n_train, n_val, n_test, seed)
    if is_complete(root, opts):
        return root
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root / LOCK_FILE):
        if is_complete(root, opts):  # another process finished while we waited for the lock
            return root
        _check_ownership(root, opts)
        _atomic_write_bytes(root / OPTIONS_FILE, json.dumps(opts, sort_keys=True).encode())
        counts = {"train": int(n_train), "val": int(n_val), "test": int(n_test)}
        specs = {split: clip_specs(counts[split], split, int(seed)) for split in SPLITS}

        marker = _read_json(root / MARKER_FILE) or {}
        damaged = damaged_files(root, marker) if marker.get("options") == opts else {}
        jobs: list[tuple[ClipSpec, str]] = []
        for stale in root.glob(".*.tmp.*"):  # a CSV or marker left half-written by a killed run
            stale.unlink()
        for split, (folder, _code) in SPLITS.items():
            d = root / folder
            d.mkdir(exist_ok=True)
            for stale in d.glob(".*.tmp.*"):  # left behind by a killed writer
                stale.unlink()
            for s in specs[split]:
                path = d / file_name(folder, s.index)
                try:
                    ok = path.stat().st_size == WAV_HEADER_BYTES + 2 * s.n_samples
                except FileNotFoundError:
                    ok = False
                if not ok or f"{folder}/{path.name}" in damaged:
                    jobs.append((s, str(path)))
        t0 = time.perf_counter()
        n_proc = _workers(workers, len(jobs))
        _render_jobs(root, jobs, n_proc)
        if progress and jobs:
            print(f"synthetic: rendered {len(jobs)} clips in {time.perf_counter() - t0:.1f} s "
                  f"({n_proc} process(es)) into {root}", flush=True)
        if damaged:
            log.warning("synthetic: %d damaged clip(s) regenerated in %s", len(damaged), root)

        for split, (folder, _code) in SPLITS.items():
            cap_header = ["file_name"] + [f"caption_{i}" for i in range(1, 6)]
            _atomic_write_bytes(root / f"clotho_captions_{folder}.csv",
                                _csv_bytes(cap_header, captions_rows(specs[split], folder), "utf-8"))
            # Real Clotho metadata is ISO-8859-1; ours is ASCII, which encodes identically.
            _atomic_write_bytes(root / f"clotho_metadata_{folder}.csv",
                                _csv_bytes(METADATA_COLUMNS, metadata_rows(specs[split], folder),
                                           "iso-8859-1"))
        files = {f"{folder}/{file_name(folder, s.index)}": file_checksum(root / folder / file_name(folder, s.index))
                 for split, (folder, _code) in SPLITS.items() for s in specs[split]}
        _atomic_write_bytes(root / MARKER_FILE, json.dumps(
            {"options": opts, "clips": counts, "sample_rate": SAMPLE_RATE, "files": files}, sort_keys=True).encode())
    return root
