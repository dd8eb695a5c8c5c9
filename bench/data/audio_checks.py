"""What makes a decoded audio file unusable, suspicious, or merely worth counting.

:func:`judge` turns an :class:`bench.data.audio.AudioScan` (a whole-file decode) into a reason the
file is bad, warnings, and flags for the summary counts, according to
:class:`ValidationOptions`. The options are dataset options (``--set NAME.min_duration=0.5``);
datasets carry them as a ``validation`` attribute (see :func:`options_of`).

Defaults, and why:

- ``min_duration=0.01`` s: shorter files (a 1-sample file, a few ms) are export mistakes and
  give an encoder nothing to embed. Clips between that and :data:`SHORT_SECONDS` (0.1 s) are
  accepted with a counted warning: clicks and UI sounds of tens of milliseconds are real data
  (sound-effect libraries and desktop sound themes are full of them).
- ``min_sample_rate=1000``, ``max_sample_rate=384000`` Hz: the range of real recording hardware;
  a 1 Hz header is a broken file, not audio.
- ``on_silence="warn"``: a file whose peak is below :data:`SILENCE_PEAK` (-80 dBFS, including
  all zeros) is listed as a warning; ``error`` makes it a bad entry, ``ignore`` says nothing.
- ``on_leak="error"``: identical decoded audio in two splits (train/test leakage) is a bad entry
  of the later split; ``warn`` lists it as a warning only. Identical audio within one split is
  always a warning.

Multichannel files are averaged to mono, every rate is resampled to the encoder's rate, and long
files are cropped to the encoder's ``max_seconds`` on load; validation accepts them and counts
them in its summary.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from bench.errors import ConfigError

SILENCE_PEAK = 1e-4  # -80 dBFS: below any real recording's noise floor
MIN_DURATION = 0.01  # s; the datasets' default min_duration: below it a file is refused
SHORT_SECONDS = 0.1  # s; accepted but warned about and counted as "short" in the summary
LONG_SECONDS = 600.0  # counted as "long" in the summary (they are cropped on load)
ON_SILENCE = ("error", "warn", "ignore")
ON_LEAK = ("error", "warn")


@dataclass(frozen=True)
class ValidationOptions:
    """Per-dataset validation thresholds and policies (see the module docstring for defaults)."""

    min_duration: float = MIN_DURATION
    min_sample_rate: int = 1000
    max_sample_rate: int = 384000
    on_silence: Literal["error", "warn", "ignore"] = "warn"
    on_leak: Literal["error", "warn"] = "error"

    def __post_init__(self) -> None:
        if self.on_silence not in ON_SILENCE:
            raise ConfigError(f"on_silence={self.on_silence!r} is not valid; use one of {', '.join(ON_SILENCE)}")
        if self.on_leak not in ON_LEAK:
            raise ConfigError(f"on_leak={self.on_leak!r} is not valid; use one of {', '.join(ON_LEAK)}")
        if not self.min_duration >= 0:
            raise ConfigError(f"min_duration={self.min_duration!r} must be >= 0 seconds")
        if not 0 < self.min_sample_rate <= self.max_sample_rate:
            raise ConfigError(f"sample-rate range {self.min_sample_rate}-{self.max_sample_rate} Hz is empty; "
                              "need 0 < min_sample_rate <= max_sample_rate")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def attach_validation(dataset: Any, *args: Any, **options: Any) -> Any:
    """Give ``dataset`` its validation options (called by dataset factories); returns ``dataset``.

    ``args``/``options`` are :class:`ValidationOptions` fields, positionally in field order.
    """
    dataset.validation = ValidationOptions(*args, **options)
    return dataset


def options_of(dataset: Any) -> ValidationOptions:
    """A dataset's validation options; a combination uses its last (evaluation) member's."""
    opts = getattr(dataset, "validation", None)
    if isinstance(opts, ValidationOptions):
        return opts
    members = getattr(dataset, "datasets", None)
    if members:
        return options_of(members[-1])
    return ValidationOptions()


@dataclass(frozen=True)
class Judgement:
    """``reason``: why the file is bad (None if usable); ``warning``; ``flags`` for summary counts."""

    reason: str | None
    warning: str | None
    flags: tuple[str, ...]


def judge(scan: Any, opts: ValidationOptions, target_rate: int | None) -> Judgement:
    """Decide what a whole-file scan means under ``opts``; ``target_rate`` is the encoder's rate."""
    sr = scan.sample_rate
    if scan.decoded_frames == 0:
        return Judgement("no audio frames could be decoded (empty or truncated data)", None, ())
    declared = scan.declared_frames
    if declared is not None and declared != scan.decoded_frames:
        what = "truncated or damaged file" if declared > scan.decoded_frames else "header undercounts the data"
        return Judgement(f"header says {declared} frames ({declared / sr:.3f} s) but {scan.decoded_frames} "
                         f"decode ({scan.decoded_frames / sr:.3f} s): {what}; re-export or re-download it",
                         None, ())
    if scan.first_nonfinite_s is not None:
        return Judgement(f"{scan.n_nonfinite} NaN/inf sample(s), the first at {scan.first_nonfinite_s:.3f} s; "
                         "re-export the file", None, ())
    if not opts.min_sample_rate <= sr <= opts.max_sample_rate:
        return Judgement(f"implausible sample rate {sr} Hz (accepted {opts.min_sample_rate}-{opts.max_sample_rate} Hz; "
                         "options min_sample_rate/max_sample_rate)", None, ())
    if scan.duration < opts.min_duration:
        return Judgement(f"too short: {scan.duration:.4f} s ({scan.decoded_frames} frames), minimum "
                         f"{opts.min_duration:g} s (option min_duration)", None, ())
    flags: list[str] = []
    if scan.channels > 1:
        flags.append("multichannel")
    if target_rate and sr > target_rate:
        flags.append("above_target_rate")
    if scan.duration > LONG_SECONDS:
        flags.append("long")
    warning = None
    if scan.duration < SHORT_SECONDS:
        flags.append("short")
        warning = (f"short clip: {scan.duration:.3f} s, below {SHORT_SECONDS:g} s; accepted (files below "
                   f"{opts.min_duration:g} s are refused, option min_duration)")
    if scan.peak < SILENCE_PEAK and opts.on_silence != "ignore":
        what = "all zero" if scan.peak == 0 else f"peak {scan.peak:.1e}, below {SILENCE_PEAK:g}"
        text = f"silent ({what}); option on_silence=error|warn|ignore"
        if opts.on_silence == "error":
            return Judgement(text, None, ())
        return Judgement(None, text, (*flags, "silent"))
    return Judgement(None, warning, tuple(flags))
