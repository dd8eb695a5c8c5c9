"""Event catalogue, clip sampler and numpy synthesis of the ``synthetic`` dataset.

A clip is a background (quiet hiss, mains hum or a near-silent noise floor) plus 1 to 3 sound
events of distinct types. Every event has a loudness (quiet/loud), a duration (short/long; knocks
have none), a position (the third of the clip that holds the centre of the event's occurrences;
the events of a clip never overlap) and a number of repetitions.

Everything random about clip ``index`` of split code ``split_code`` comes from
``numpy.random.SeedSequence([seed, split_code, index, stream])``: stream 0 draws the events
(:func:`sample_clip`), stream 1 the captions, stream 2 the audio noise (:func:`render_clip`). So any
clip can be drawn alone, in any process, in any order, and a resumed generation is identical to
an uninterrupted one.

Imported lazily (numpy) by the plugin factory, never at plugin-module import time.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

SAMPLE_RATE = 16000
MIN_SECONDS = 3.0
MAX_SECONDS = 8.0

POSITIONS = ("start", "middle", "end")
BACKGROUNDS = ("hiss", "hum", "silence")
BACKGROUND_PROBS = (0.4, 0.3, 0.3)
N_EVENTS_PROBS = {1: 0.4, 2: 0.35, 3: 0.25}
REPETITION_PROBS = {1: 0.45, 2: 0.25, 3: 0.2, 4: 0.1}
# Four repetitions are only drawn for events that are short (or have no duration attribute), so
# that "four times" stays countable in a clip of at most 8 s.
MAX_REPS_LONG = 3

STREAM_EVENTS, STREAM_CAPTIONS, STREAM_AUDIO = 0, 1, 2

# Margins (s) that keep the first/last event off the clip edges and events apart from each other.
EDGE = 0.05
GROUP_GAP = 0.3

# type -> ((short_min, short_max), (long_min, long_max)) in seconds for one occurrence, or None
# for a type without a duration attribute (fixed length given in FIXED_DURATION).
DURATIONS: dict[str, tuple[tuple[float, float], tuple[float, float]] | None] = {
    "tone_low": ((0.12, 0.3), (0.7, 1.2)),
    "tone_mid": ((0.12, 0.3), (0.7, 1.2)),
    "tone_high": ((0.12, 0.3), (0.7, 1.2)),
    "chirp_up": ((0.2, 0.35), (0.8, 1.3)),
    "chirp_down": ((0.2, 0.35), (0.8, 1.3)),
    "noise_white": ((0.12, 0.3), (0.7, 1.2)),
    "noise_pink": ((0.12, 0.3), (0.7, 1.2)),
    "noise_brown": ((0.15, 0.3), (0.7, 1.2)),
    "clicks_slow": ((0.6, 0.9), (1.4, 2.0)),
    "clicks_fast": ((0.5, 0.8), (1.4, 2.0)),
    "tremolo": ((0.4, 0.6), (1.2, 1.8)),
    "buzz": ((0.15, 0.3), (0.7, 1.2)),
    "knock": None,
    "siren": ((0.5, 0.8), (1.3, 2.0)),
    "bell": ((0.25, 0.4), (1.0, 1.5)),
}
FIXED_DURATION = {"knock": (0.12, 0.18)}
EVENT_TYPES: tuple[str, ...] = tuple(DURATIONS)

# Peak amplitude of one event before mixing: ~20 dB between quiet and loud.
LOUD_PEAK = (0.45, 0.65)
QUIET_PEAK = (0.04, 0.07)


@dataclass
class EventSpec:
    """One event of a clip: its attributes, its timing and its synthesis parameters."""

    type: str
    loudness: str  # "quiet" | "loud"
    duration: str | None  # "short" | "long" | None (knock)
    position: str  # "start" | "middle" | "end"
    repetitions: int
    event_duration_s: float  # length of one occurrence
    gap_s: float  # silence between occurrences
    onsets_s: list[float] = field(default_factory=list)
    peak: float = 0.5
    params: dict[str, float] = field(default_factory=dict)

    @property
    def span_s(self) -> float:
        """Time from the first onset to the end of the last occurrence."""
        return self.repetitions * self.event_duration_s + (self.repetitions - 1) * self.gap_s


@dataclass
class ClipSpec:
    """Everything that determines one clip (its audio and its metadata), without the audio."""

    seed: int
    split_code: int
    index: int
    duration_s: float
    background: str
    background_params: dict[str, float]
    events: list[EventSpec]

    @property
    def n_samples(self) -> int:
        """Number of samples of the rendered clip."""
        return int(round(self.duration_s * SAMPLE_RATE))

    def events_json(self) -> list[dict[str, Any]]:
        """The events as plain dicts (for the metadata CSV)."""
        return [asdict(e) for e in self.events]


def clip_rng(seed: int, split_code: int, index: int, stream: int) -> np.random.Generator:
    """The generator of one random stream of one clip (see the module docstring)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, split_code, index, stream])))


def _r(x: float, nd: int = 3) -> float:
    # Times and parameters are rounded when drawn, so the metadata written to disk describes the
    # audio exactly (the renderer reads the same rounded values).
    return float(round(float(x), nd))


def _choice(rng: np.random.Generator, probs: dict[int, float]) -> int:
    keys = list(probs)
    return int(keys[int(rng.choice(len(keys), p=np.array([probs[k] for k in keys])))])


def _draw_params(rng: np.random.Generator, etype: str) -> dict[str, float]:
    u = rng.uniform
    if etype == "tone_low":
        return {"freq": _r(u(120, 250), 1)}
    if etype == "tone_mid":
        return {"freq": _r(u(450, 900), 1)}
    if etype == "tone_high":
        return {"freq": _r(u(2000, 3800), 1)}
    if etype == "chirp_up":
        return {"f0": _r(u(300, 600), 1), "f1": _r(u(2200, 4000), 1)}
    if etype == "chirp_down":
        return {"f0": _r(u(2200, 4000), 1), "f1": _r(u(300, 600), 1)}
    if etype == "clicks_slow":
        return {"rate": _r(u(3.0, 5.0), 2), "click_freq": _r(u(2000, 4000), 1)}
    if etype == "clicks_fast":
        return {"rate": _r(u(15.0, 25.0), 2), "click_freq": _r(u(2000, 4000), 1)}
    if etype == "tremolo":
        return {"freq": _r(u(500, 1000), 1), "rate": _r(u(5.0, 9.0), 2), "depth": 0.9}
    if etype == "buzz":
        return {"freq": _r(u(90, 160), 1)}
    if etype == "knock":
        return {"freq": _r(u(120, 350), 1), "decay": _r(u(0.015, 0.035), 4)}
    if etype == "siren":
        return {"freq": _r(u(700, 1100), 1), "dev": _r(u(200, 350), 1), "rate": _r(u(1.5, 3.0), 2)}
    if etype == "bell":
        return {"freq": _r(u(500, 1200), 1)}
    return {}  # noise bursts: colour is the type


def _draw_event(rng: np.random.Generator, etype: str) -> EventSpec:
    loudness = "loud" if rng.random() < 0.5 else "quiet"
    ranges = DURATIONS[etype]
    if ranges is None:
        duration = None
        dur_s = rng.uniform(*FIXED_DURATION[etype])
    else:
        duration = "long" if rng.random() < 0.5 else "short"
        dur_s = rng.uniform(*ranges[duration == "long"])
    reps = _choice(rng, REPETITION_PROBS)
    if duration == "long":
        reps = min(reps, MAX_REPS_LONG)
    gap = rng.uniform(0.2, 0.4) if duration == "long" else rng.uniform(0.12, 0.3)
    peak = rng.uniform(*(LOUD_PEAK if loudness == "loud" else QUIET_PEAK))
    return EventSpec(type=etype, loudness=loudness, duration=duration, position="",
                     repetitions=reps, event_duration_s=_r(dur_s), gap_s=_r(gap), peak=_r(peak, 4),
                     params=_draw_params(rng, etype))


def _required_seconds(events: list[EventSpec]) -> float:
    return 2 * EDGE + sum(e.span_s for e in events) + GROUP_GAP * (len(events) - 1)


def _layout(rng: np.random.Generator, events: list[EventSpec], total: float) -> None:
    """Set the onsets: start groups hug the beginning, end groups the end, middle ones the centre."""
    slack = total - _required_seconds(events)
    jitter = max(0.0, min(0.1 * total, slack / 3))
    starts: dict[int, float] = {}
    for i, e in enumerate(events):
        if e.position == "start":
            starts[i] = EDGE + rng.uniform(0, jitter)
        elif e.position == "end":
            starts[i] = total - EDGE - rng.uniform(0, jitter) - e.span_s
    for i, e in enumerate(events):
        if e.position == "middle":
            centre = total / 2 + rng.uniform(-0.05, 0.05) * total
            lo = EDGE if i == 0 else starts[i - 1] + events[i - 1].span_s + GROUP_GAP
            hi = total - EDGE - e.span_s if i == len(events) - 1 else starts[i + 1] - GROUP_GAP - e.span_s
            starts[i] = min(max(centre - e.span_s / 2, lo), hi)
    for i, e in enumerate(events):
        step = e.event_duration_s + e.gap_s
        e.onsets_s = [_r(starts[i] + k * step) for k in range(e.repetitions)]
        # The label is where the group really is: a long neighbour can push a "middle" group
        # to an edge, and then the captions must say so.
        centre = (e.onsets_s[0] + e.span_s / 2) / total
        e.position = POSITIONS[min(2, int(centre * 3))]


def sample_clip(seed: int, split_code: int, index: int) -> ClipSpec:
    """Draw the events, background and duration of one clip (cheap: no audio is made)."""
    rng = clip_rng(seed, split_code, index, STREAM_EVENTS)
    n_events = _choice(rng, N_EVENTS_PROBS)
    types = [EVENT_TYPES[int(k)] for k in rng.choice(len(EVENT_TYPES), size=n_events, replace=False)]
    positions = sorted(rng.choice(len(POSITIONS), size=n_events, replace=False).tolist())
    # Redraw the attributes until the events fit in MAX_SECONDS (rare for 3 long repeated events);
    # after many tries fall back to single occurrences, which always fit.
    for attempt in range(100):
        events = [_draw_event(rng, t) for t in types]
        if attempt == 99:
            for e in events:
                e.repetitions = 1
        if _required_seconds(events) <= MAX_SECONDS - 0.1:
            break
    for e, p in zip(events, positions):
        e.position = POSITIONS[p]
    need = _required_seconds(events)
    total = _r(min(MAX_SECONDS, max(rng.uniform(MIN_SECONDS, MAX_SECONDS), need + 0.05)), 2)
    _layout(rng, events, total)
    background = BACKGROUNDS[int(rng.choice(len(BACKGROUNDS), p=np.array(BACKGROUND_PROBS)))]
    if background == "hiss":
        bparams = {"rms": _r(rng.uniform(0.003, 0.006), 5)}
    elif background == "hum":
        bparams = {"freq": float(rng.choice([50.0, 60.0])), "amp": _r(rng.uniform(0.008, 0.015), 5),
                   "rms": 0.0004}
    else:
        bparams = {"rms": _r(rng.uniform(0.0002, 0.0005), 5)}
    return ClipSpec(seed=seed, split_code=split_code, index=index, duration_s=total,
                    background=background, background_params=bparams, events=events)


# --------------------------------------------------------------------------------------- audio


def _fade(n: int, attack: float = 0.008, release: float = 0.015) -> np.ndarray:
    env = np.ones(n)
    a = min(n // 2, max(1, int(attack * SAMPLE_RATE)))
    r = min(n // 2, max(1, int(release * SAMPLE_RATE)))
    env[:a] = 0.5 - 0.5 * np.cos(np.pi * np.arange(a) / a)
    env[n - r:] = (0.5 + 0.5 * np.cos(np.pi * np.arange(1, r + 1) / r))
    return env


def _coloured_noise(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Noise whose power falls as 1/f**exponent (0 white, 1 pink, 2 brown), 20 Hz high-passed."""
    white = rng.standard_normal(n)
    if exponent == 0:
        return white
    spec = np.fft.rfft(white)
    f = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE)
    gain = np.where(f < 20.0, 0.0, 1.0 / np.maximum(f, 20.0) ** (exponent / 2))
    return np.fft.irfft(spec * gain, n)


def _synth(rng: np.random.Generator, e: EventSpec) -> np.ndarray:
    """One occurrence of an event, peak-normalised to ``e.peak``."""
    n = max(16, int(round(e.event_duration_s * SAMPLE_RATE)))
    t = np.arange(n) / SAMPLE_RATE
    p = e.params
    two_pi = 2 * np.pi
    if e.type in ("tone_low", "tone_mid", "tone_high"):
        x = np.sin(two_pi * p["freq"] * t) * _fade(n)
    elif e.type in ("chirp_up", "chirp_down"):
        dur = n / SAMPLE_RATE
        k = p["f1"] / p["f0"]
        phase = two_pi * p["f0"] * dur / np.log(k) * (k ** (t / dur) - 1.0)  # exponential sweep
        x = np.sin(phase) * _fade(n)
    elif e.type.startswith("noise_"):
        exponent = {"noise_white": 0.0, "noise_pink": 1.0, "noise_brown": 2.0}[e.type]
        x = _coloured_noise(rng, n, exponent) * _fade(n)
    elif e.type in ("clicks_slow", "clicks_fast"):
        period = 1.0 / p["rate"]
        times = np.arange(0.01, n / SAMPLE_RATE - 0.005, period)
        times = times + rng.uniform(-0.04, 0.04, size=times.size) * period
        train = np.zeros(n)
        train[np.clip((times * SAMPLE_RATE).astype(int), 0, n - 1)] = 1.0
        kt = np.arange(int(0.008 * SAMPLE_RATE)) / SAMPLE_RATE
        kernel = np.sin(two_pi * p["click_freq"] * kt) * np.exp(-kt / 0.0015)
        x = np.convolve(train, kernel)[:n]
    elif e.type == "tremolo":
        am = 1.0 - p["depth"] * (0.5 - 0.5 * np.cos(two_pi * p["rate"] * t))
        x = np.sin(two_pi * p["freq"] * t) * am * _fade(n)
    elif e.type == "buzz":
        # Band-limited sawtooth (harmonics up to 6 kHz, so no aliasing) read from a one-period
        # wavetable: summing ~50 sines per sample directly is 10x slower.
        harmonics = np.arange(1, int(6000 // p["freq"]) + 1)
        table_t = np.arange(2048) / 2048
        table = (np.sin(two_pi * np.outer(table_t, harmonics)) / harmonics).sum(axis=1)
        pos = (p["freq"] * t % 1.0) * 2048
        i0 = pos.astype(int)
        frac = pos - i0
        x = (table[i0] * (1 - frac) + table[(i0 + 1) % 2048] * frac) * _fade(n)
    elif e.type == "knock":
        env = np.exp(-t / p["decay"])
        body = np.sin(two_pi * p["freq"] * t) + 0.5 * np.sin(two_pi * 2.3 * p["freq"] * t)
        transient = rng.standard_normal(n) * np.exp(-t / 0.002)
        x = (body * env + 0.5 * transient) * _fade(n, attack=0.0005)
    elif e.type == "siren":
        inst = p["freq"] + p["dev"] * np.sin(two_pi * p["rate"] * t)
        phase = two_pi * np.cumsum(inst) / SAMPLE_RATE
        x = (np.sin(phase) + 0.3 * np.sin(2 * phase)) * _fade(n, attack=0.03, release=0.05)
    elif e.type == "bell":
        ratios = np.array([1.0, 2.0, 2.76, 5.4])
        amps = np.array([1.0, 0.5, 0.6, 0.3])
        decays = (n / SAMPLE_RATE) / 4 / np.array([1.0, 1.3, 1.7, 2.5])  # upper partials die faster
        x = (amps * np.sin(two_pi * p["freq"] * np.outer(t, ratios)) * np.exp(-t[:, None] / decays)).sum(axis=1)
        x = x * _fade(n, attack=0.002)
    else:  # pragma: no cover - EVENT_TYPES and this function are kept in step by the tests
        raise ValueError(f"unknown event type {e.type!r}")
    peak = np.max(np.abs(x))
    return x * (e.peak / peak) if peak > 0 else x


def _background(rng: np.random.Generator, spec: ClipSpec, n: int) -> np.ndarray:
    bp = spec.background_params
    # float32 draws are twice as fast, and the floor is far below 16-bit resolution's concerns.
    floor = rng.standard_normal(n, dtype=np.float32).astype(np.float64) * bp["rms"]
    if spec.background != "hum":
        return floor
    # 50 and 60 Hz both complete whole periods in 0.1 s: synthesise that block once and tile it.
    block = SAMPLE_RATE // 10
    t = np.arange(block) / SAMPLE_RATE
    harmonics = np.array([1.0, 2.0, 3.0, 4.0])
    amps = np.array([1.0, 0.5, 0.3, 0.2]) / 2.0
    hum = (amps * np.sin(2 * np.pi * bp["freq"] * np.outer(t, harmonics))).sum(axis=1)
    return floor + bp["amp"] * np.tile(hum, n // block + 1)[:n]


def render_clip(spec: ClipSpec) -> np.ndarray:
    """The clip's audio as little-endian int16 samples at :data:`SAMPLE_RATE`."""
    rng = clip_rng(spec.seed, spec.split_code, spec.index, STREAM_AUDIO)
    n = spec.n_samples
    x = _background(rng, spec, n)
    for e in spec.events:
        one = _synth(rng, e)
        for onset in e.onsets_s:
            a = int(round(onset * SAMPLE_RATE))
            b = min(n, a + one.size)
            x[a:b] += one[: b - a]
    peak = np.max(np.abs(x))
    if peak > 0.98:  # loud events can add up; scale the whole clip so relations are kept
        x *= 0.98 / peak
    return np.round(x * 32767.0).astype("<i2")
