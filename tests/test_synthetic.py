"""The synthetic dataset: Clotho layout, determinism, caching, crash safety, and that the audio
and the captions really carry the attributes the metadata claims."""

from __future__ import annotations

import collections
import csv
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bench.errors import ConfigError, DataError
from bench_plugins.datasets import _synth_events as ev
from bench_plugins.datasets import _synth_generate as gen
from bench_plugins.datasets._synth_captions import make_captions
from bench_plugins.datasets.synthetic import SyntheticDataset, build_synthetic

REPO = Path(__file__).resolve().parents[1]
TINY = dict(n_train=6, n_val=3, n_test=3, seed=0)
FOLDERS = ("development", "validation", "evaluation")


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != gen.LOCK_FILE}


def _mtimes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "tiny"
    gen.generate(root, workers=1, **TINY)
    return root


# ------------------------------------------------------------------------------------- layout


def test_layout_matches_clotho(tiny_root: Path) -> None:
    counts = {"development": 6, "validation": 3, "evaluation": 3}
    for folder, n in counts.items():
        wavs = sorted(p.name for p in (tiny_root / folder).iterdir())
        assert len(wavs) == n and all(w.endswith(".wav") for w in wavs)
        with open(tiny_root / f"clotho_captions_{folder}.csv", newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
        assert rows[0] == ["file_name"] + [f"caption_{i}" for i in range(1, 6)]
        assert sorted(r[0] for r in rows[1:]) == wavs
        for r in rows[1:]:
            caps = r[1:]
            assert len(caps) == 5 and len(set(caps)) == 5 and all(c.strip() for c in caps)
        raw = (tiny_root / f"clotho_metadata_{folder}.csv").read_bytes()
        meta = list(csv.DictReader(raw.decode("iso-8859-1").splitlines()))
        assert [m["file_name"] for m in meta] == [r[0] for r in rows[1:]]
        assert len({m["sound_id"] for m in meta}) == n and all(m["sound_id"].isdigit() for m in meta)
        for m in meta:
            info = sf.info(str(tiny_root / folder / m["file_name"]))
            assert (info.samplerate, info.channels, info.subtype, info.format) == (16000, 1, "PCM_16", "WAV")
            assert 3.0 <= info.duration <= 8.0
            assert info.duration == pytest.approx(float(m["duration_s"]), abs=1e-3)
            events = json.loads(m["events"])
            assert 1 <= len(events) == int(m["n_events"]) <= 3
            assert m["keywords"].split(";") == [e["type"] for e in events]


def test_read_back_through_clotho_loader(tiny_root: Path) -> None:
    ds = build_synthetic(root=str(tiny_root), **TINY)
    assert isinstance(ds, SyntheticDataset)
    sizes = {s: len(ds.split(s)) for s in ("train", "val", "test")}
    assert sizes == {"train": 6, "val": 3, "test": 3}
    item = ds.split("val")[0]
    assert item.audio_id == "validation_00000.wav"
    assert Path(item.audio_path) == tiny_root / "validation" / "validation_00000.wav"
    assert len(item.captions) == 5
    truth = ds.events("val")[item.audio_id]
    assert truth == gen.clip_specs(1, "val", 0)[0].events_json()


def test_bad_options_and_foreign_roots(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="n_train"):
        gen.generate(tmp_path / "x", n_train=0, n_val=1, n_test=1)
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(DataError, match="not made by the synthetic generator"):
        gen.generate(foreign, n_train=2, n_val=1, n_test=1)
    assert (foreign / "notes.txt").read_text() == "keep me"
    other = tmp_path / "other"
    gen.generate(other, n_train=1, n_val=1, n_test=1, workers=1)
    with pytest.raises(DataError, match="other options"):
        gen.generate(other, n_train=2, n_val=1, n_test=1)


# ------------------------------------------------------------------------- sampler and captions


@pytest.fixture(scope="module")
def default_specs() -> list[ev.ClipSpec]:
    return [s for split, n in (("train", 1000), ("val", 200), ("test", 200))
            for s in gen.clip_specs(n, split, 0)]


def test_sampler_covers_types_and_attributes(default_specs: list[ev.ClipSpec]) -> None:
    events = [e for s in default_specs for e in s.events]
    types = collections.Counter(e.type for e in events)
    assert len(types) >= 12 and set(types) == set(ev.EVENT_TYPES)
    assert min(types.values()) > 50  # no type is a rarity
    assert {e.loudness for e in events} == {"quiet", "loud"}
    assert {e.duration for e in events} == {"short", "long", None}
    assert {e.position for e in events} == set(ev.POSITIONS)
    assert {e.repetitions for e in events} == {1, 2, 3, 4}
    assert {len(s.events) for s in default_specs} == {1, 2, 3}
    assert {s.background for s in default_specs} == set(ev.BACKGROUNDS)
    # Many clips share partial descriptions: the same (type, attribute) combination recurs.
    combos = collections.Counter((e.type, e.loudness, e.duration) for e in events)
    assert sum(c for c in combos.values() if c >= 5) > 0.9 * len(events)


def test_sampled_layout_is_consistent(default_specs: list[ev.ClipSpec]) -> None:
    order = {p: i for i, p in enumerate(ev.POSITIONS)}
    for s in default_specs:
        assert 3.0 <= s.duration_s <= 8.0
        spans = []
        for e in s.events:
            assert len(e.onsets_s) == e.repetitions
            lo, hi = ev.DURATIONS[e.type][e.duration == "long"] if e.duration else ev.FIXED_DURATION[e.type]
            assert lo - 1e-3 <= e.event_duration_s <= hi + 1e-3
            spans.append((e.onsets_s[0], e.onsets_s[-1] + e.event_duration_s))
        assert spans[0][0] >= 0 and spans[-1][1] <= s.duration_s + 1e-6
        for (_a0, a1), (b0, _b1) in zip(spans, spans[1:]):
            assert a1 < b0  # events never overlap, they follow in position order
        assert [order[e.position] for e in s.events] == sorted(order[e.position] for e in s.events)
        for e, (a, b) in zip(s.events, spans):
            centre = (a + b) / 2 / s.duration_s
            assert e.position == ev.POSITIONS[min(2, int(centre * 3))]
    positions = collections.Counter(e.position for s in default_specs for e in s.events)
    assert min(positions.values()) > 0.25 * sum(positions.values())


# word in a caption -> predicate the clip must satisfy
CAPTION_FACTS = {
    r"\bhigh-pitched\b|\bshrill\b|\bhigh tones?\b": lambda es: any(e.type == "tone_high" for e in es),
    r"\blow-pitched\b|\blow beeps?\b|\blow-frequency\b": lambda es: any(e.type == "tone_low" for e in es),
    r"\brising\b|\bupward\b": lambda es: any(e.type == "chirp_up" for e in es),
    r"\bfalling\b|\bdownward\b": lambda es: any(e.type == "chirp_down" for e in es),
    r"\bslow\b": lambda es: any(e.type == "clicks_slow" for e in es),
    r"\brapid\b|\bfast\b": lambda es: any(e.type == "clicks_fast" for e in es),
    r"\bloud\b|\bstrong\b|\bpowerful\b": lambda es: any(e.loudness == "loud" for e in es),
    r"\bquiet\b|\bfaint\b|\bsoft\b": lambda es: any(e.loudness == "quiet" for e in es),
    r"\bsustained\b|\bdrawn-out\b|\blong\b": lambda es: any(e.duration == "long" for e in es),
    r"\bshort\b|\bbrief\b": lambda es: any(e.duration == "short" for e in es),
    r"\btwice\b|\btwo\b": lambda es: any(e.repetitions == 2 for e in es),
    r"\bthree\b": lambda es: any(e.repetitions == 3 for e in es),
    r"\bfour\b": lambda es: any(e.repetitions == 4 for e in es),
    r"\bbeginning\b|\bat the start\b": lambda es: any(e.position == "start" for e in es),
    r"\bmiddle\b|\bmidway\b|\bhalfway\b": lambda es: any(e.position == "middle" for e in es),
    r"\bat the end\b|\bnear the end\b": lambda es: any(e.position == "end" for e in es),
    r"\bhum\b": lambda es: None,  # checked against the background below
}
TYPE_WORDS = {
    "tone_low": r"low|deep tone", "tone_mid": r"mid|medium", "tone_high": r"high|shrill",
    "chirp_up": r"rising|upward", "chirp_down": r"falling|downward", "noise_white": r"white noise|static",
    "noise_pink": r"pink noise|whoosh", "noise_brown": r"brown noise|rumbl", "clicks_slow": r"slow",
    "clicks_fast": r"rapid|fast", "tremolo": r"waver|tremolo|pulsing|wobble", "buzz": r"buzz",
    "knock": r"knock", "siren": r"siren|wail|alarm", "bell": r"bell|chime",
}


def test_captions_state_only_true_facts(default_specs: list[ev.ClipSpec]) -> None:
    n_all_named = n_caps = 0
    seen = collections.Counter()
    for s in default_specs[:400]:
        caps = make_captions(s)
        assert len(caps) == 5 and len(set(caps)) == 5
        for c in caps:
            low = c.lower()
            assert c[0].isupper() and c.endswith(".")
            for pattern, holds in CAPTION_FACTS.items():
                if re.search(pattern, low):
                    seen[pattern] += 1
                    if pattern == r"\bhum\b":
                        assert s.background == "hum", c
                    else:
                        assert holds(s.events), (c, s.events)
            named = [bool(re.search(TYPE_WORDS[e.type], low)) for e in s.events]
            assert any(named), c  # a caption may miss a faint sound, never all of them
            n_all_named += all(named)
            n_caps += 1
    assert n_all_named > 0.85 * n_caps
    assert set(seen) == set(CAPTION_FACTS)  # every kind of detail does get mentioned


def test_captions_vary_in_detail(default_specs: list[ev.ClipSpec]) -> None:
    lengths = [len(c.split()) for s in default_specs[:200] for c in make_captions(s)]
    assert min(lengths) <= 5 and max(lengths) >= 20
    assert 8 <= float(np.mean(lengths)) <= 25  # Clotho's captions average about 11 words


# ---------------------------------------------------------------------------------- audio truth


def _clip(*events: ev.EventSpec, duration: float = 4.0) -> ev.ClipSpec:
    return ev.ClipSpec(seed=0, split_code=9, index=0, duration_s=duration, background="silence",
                       background_params={"rms": 0.0}, events=list(events))


def _event(etype: str, onset: float = 1.0, dur: float = 1.0, peak: float = 0.5, **params: float) -> ev.EventSpec:
    return ev.EventSpec(type=etype, loudness="loud", duration="long", position="middle", repetitions=1,
                        event_duration_s=dur, gap_s=0.2, onsets_s=[onset], peak=peak, params=params)


def _peak_hz(x: np.ndarray) -> float:
    spec = np.abs(np.fft.rfft(x.astype(float)))
    return float(np.fft.rfftfreq(x.size, 1 / ev.SAMPLE_RATE)[np.argmax(spec)])


def test_audio_differs_by_attribute() -> None:
    sr = ev.SAMPLE_RATE
    high = ev.render_clip(_clip(_event("tone_high", freq=3000.0)))
    low = ev.render_clip(_clip(_event("tone_low", freq=180.0)))
    assert _peak_hz(high) > 2000 > 300 > _peak_hz(low)

    up = ev.render_clip(_clip(_event("chirp_up", f0=400.0, f1=3000.0))).astype(float)
    down = ev.render_clip(_clip(_event("chirp_down", f0=3000.0, f1=400.0))).astype(float)
    assert _peak_hz(up[sr:int(1.3 * sr)]) < _peak_hz(up[int(1.7 * sr):2 * sr])
    assert _peak_hz(down[sr:int(1.3 * sr)]) > _peak_hz(down[int(1.7 * sr):2 * sr])

    loud = ev.render_clip(_clip(_event("noise_white", peak=0.6))).astype(float)
    quiet = ev.render_clip(_clip(_event("noise_white", peak=0.05))).astype(float)
    assert np.sqrt(np.mean(loud ** 2)) > 8 * np.sqrt(np.mean(quiet ** 2))

    def n_clicks(rate: float) -> int:
        x = np.abs(ev.render_clip(_clip(_event("clicks_slow" if rate < 10 else "clicks_fast",
                                               rate=rate, click_freq=3000.0))).astype(float))
        above = x > 0.3 * x.max()
        onsets = np.flatnonzero(above[1:] & ~above[:-1])
        return int(np.sum(np.diff(onsets, prepend=-sr) > 0.02 * sr))  # merge ringing of one click

    assert 3 <= n_clicks(4.0) <= 5 and 17 <= n_clicks(20.0) <= 23

    pink = ev.render_clip(_clip(_event("noise_pink"))).astype(float)[sr:2 * sr]
    brown = ev.render_clip(_clip(_event("noise_brown"))).astype(float)[sr:2 * sr]
    white = loud[sr:2 * sr]

    def low_share(x: np.ndarray) -> float:
        p = np.abs(np.fft.rfft(x)) ** 2
        f = np.fft.rfftfreq(x.size, 1 / sr)
        return float(p[f < 500].sum() / p.sum())

    assert low_share(white) < low_share(pink) < low_share(brown)


def test_rendered_audio_matches_metadata(default_specs: list[ev.ClipSpec]) -> None:
    sr = ev.SAMPLE_RATE
    for s in default_specs[:40]:
        clean = ev.ClipSpec(**{**s.__dict__, "background_params": {**s.background_params, "rms": 0.0,
                                                                    "amp": 0.0}})
        x = ev.render_clip(clean).astype(float) / 32767
        assert x.size == s.n_samples
        covered = np.zeros(x.size, bool)
        for e in s.events:
            for onset in e.onsets_s:
                a, b = int(round(onset * sr)), int(round((onset + e.event_duration_s) * sr))
                covered[a:b + 1] = True
                # every occurrence is there, at its loudness
                assert np.abs(x[a:b + 1]).max() == pytest.approx(e.peak, rel=0.02, abs=2e-4)
        assert np.abs(x[~covered]).max() < 1e-4  # and nothing sounds elsewhere


# ------------------------------------------------------------------- determinism and caching


@pytest.mark.slow
def test_deterministic_across_dirs_and_workers(tmp_path: Path, tiny_root: Path) -> None:
    # A user script without a __main__ guard, rendering in parallel: must neither hang (as
    # multiprocessing's spawn would, re-running the script) nor change a byte.
    script = tmp_path / "unguarded.py"
    script.write_text("from bench_plugins.datasets._synth_generate import generate\n"
                      f"generate({str(tmp_path / 'again')!r}, n_train=6, n_val=3, n_test=3, seed=0, workers=2)\n")
    run = subprocess.run([sys.executable, str(script)], cwd=tmp_path, timeout=120, capture_output=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert run.returncode == 0, run.stderr.decode()[-2000:]
    assert _hashes(tmp_path / "again") == _hashes(tiny_root)
    changed = gen.generate(tmp_path / "seed1", workers=1, **{**TINY, "seed": 1})
    h0, h1 = _hashes(tiny_root), _hashes(changed)
    assert h0["clotho_captions_development.csv"] != h1["clotho_captions_development.csv"]
    assert h0["development/development_00000.wav"] != h1["development/development_00000.wav"]


def test_default_root_is_a_reused_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path))
    ds = build_synthetic(n_train=3, n_val=2, n_test=2, seed=5, workers=1)
    fp = gen.fingerprint(3, 2, 2, 5)
    assert ds.root == tmp_path / "synthetic" / fp
    assert fp != gen.fingerprint(3, 2, 2, 6) != gen.fingerprint(4, 2, 2, 5)
    before = _mtimes(ds.root)

    def boom(*_a: object, **_k: object) -> None:
        raise AssertionError("a cached dataset must not be rendered again")

    monkeypatch.setattr(gen, "render_clip", boom)
    monkeypatch.setattr(gen, "_atomic_write_bytes", boom)
    again = build_synthetic(n_train=3, n_val=2, n_test=2, seed=5)
    assert again.root == ds.root and _mtimes(ds.root) == before
    assert len(again.split("train")) == 3


def test_half_generated_root_is_completed_not_used(tmp_path: Path, tiny_root: Path) -> None:
    root = tmp_path / "half"
    shutil.copytree(tiny_root, root)
    reference = _hashes(tiny_root)
    # What a killed generator can leave: no marker, a missing wav, a temp file, and (from some
    # other accident) a truncated wav and a truncated CSV.
    (root / gen.MARKER_FILE).unlink()
    (root / "development" / "development_00002.wav").unlink()
    damaged = root / "validation" / "validation_00001.wav"
    damaged.write_bytes(damaged.read_bytes()[:1000])
    (root / "development" / ".development_00003.wav.tmp.999").write_bytes(b"partial")
    (root / f".{gen.MARKER_FILE}.tmp.999").write_bytes(b"{")
    (root / "clotho_captions_evaluation.csv").write_text("file_name,caption_1\n")
    assert not gen.is_complete(root, gen.options_dict(**TINY))
    gen.generate(root, workers=1, **TINY)
    assert _hashes(root) == reference
    assert not list(root.rglob("*.tmp.*"))


@pytest.mark.slow
def test_killed_generation_resumes(tmp_path: Path, tiny_root: Path) -> None:
    root = tmp_path / "killed"
    code = ("import sys; from bench_plugins.datasets._synth_generate import generate; "
            f"generate({str(root)!r}, n_train=400, n_val=3, n_test=3, seed=0, workers=1)")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        d = root / "development"
        if d.is_dir() and len(list(d.glob("*.wav"))) >= 20:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (root / gen.MARKER_FILE).exists(), "generation finished before it could be killed"
    assert not gen.is_complete(root, gen.options_dict(400, 3, 3, 0))
    ds = build_synthetic(root=str(root), n_train=400, n_val=3, n_test=3, seed=0, workers=1)
    assert len(ds.split("train")) == 400 and (root / gen.MARKER_FILE).exists()
    for name in ("development/development_00000.wav", "validation/validation_00002.wav",
                 "clotho_captions_validation.csv", "clotho_metadata_evaluation.csv"):
        assert (root / name).read_bytes() == (tiny_root / name).read_bytes()  # clip RNGs are per index


@pytest.mark.slow
def test_concurrent_generators_do_not_corrupt(tmp_path: Path, tiny_root: Path) -> None:
    root = tmp_path / "shared"
    code = ("from bench_plugins.datasets._synth_generate import generate; "
            f"generate({str(root)!r}, n_train=6, n_val=3, n_test=3, seed=0, workers=1)")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env) for _ in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert _hashes(root) == _hashes(tiny_root)
