"""Robustness of bench.data.audio: every bad file gives a named AudioError, good files decode right."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf

from bench.data.audio import AudioError, audio_info, load_audio, resample
from bench.errors import DataError


def _tone(sr: int, seconds: float, freq: float = 440.0, channels: int = 1, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(sr * seconds))) / sr
    x = (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


def _one_line_error(path, *args, **kwargs) -> str:
    with pytest.raises(AudioError) as ei:
        load_audio(path, *args, **kwargs)
    msg = str(ei.value)
    assert "\n" not in msg and str(path) in msg
    assert isinstance(ei.value, DataError)
    return msg


def test_wav_roundtrip_and_info(tmp_path):
    p = tmp_path / "a.wav"
    x = _tone(16000, 1.0)
    sf.write(p, x, 16000, subtype="PCM_16")
    info = audio_info(p)
    assert (info.frames, info.sample_rate, info.channels) == (16000, 16000, 1)
    assert info.duration == pytest.approx(1.0)
    y = load_audio(p, 16000)
    assert y.dtype == np.float32 and y.shape == (16000,)
    assert np.max(np.abs(y - x)) < 1e-3


def test_zero_byte_file(tmp_path):
    p = tmp_path / "empty.wav"
    p.write_bytes(b"")
    assert "empty (0 bytes)" in _one_line_error(p, 16000)
    with pytest.raises(AudioError, match="empty"):
        audio_info(p)


def test_missing_file(tmp_path):
    assert "not found" in _one_line_error(tmp_path / "nope.wav", 16000)


def test_truncated_header(tmp_path):
    good = tmp_path / "good.wav"
    sf.write(good, _tone(16000, 0.5), 16000)
    p = tmp_path / "trunc.wav"
    p.write_bytes(good.read_bytes()[:20])  # RIFF header cut inside the fmt chunk
    msg = _one_line_error(p, 16000)
    assert "header" in msg


def test_text_file_named_wav(tmp_path):
    p = tmp_path / "notes.wav"
    p.write_text("this is not audio, just some notes\n")
    assert "not an audio file" in _one_line_error(p, 16000)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nonfinite_samples(tmp_path, bad):
    x = _tone(8000, 0.5)
    x[100] = bad
    p = tmp_path / "nan.wav"
    sf.write(p, x, 8000, subtype="FLOAT")
    assert "NaN/inf" in _one_line_error(p, 8000)


def test_float_wav_over_full_scale_is_clipped(tmp_path):
    p = tmp_path / "loud.wav"
    sf.write(p, _tone(8000, 0.2, amp=3.0), 8000, subtype="FLOAT")
    y = load_audio(p, 8000)
    assert np.max(np.abs(y)) <= 1.0 and np.max(np.abs(y)) > 0.99


def test_8bit_pcm(tmp_path):
    p = tmp_path / "u8.wav"
    x = _tone(11025, 0.5)
    sf.write(p, x, 11025, subtype="PCM_U8")
    y = load_audio(p, 11025)
    assert y.shape == (5512,) or y.shape == (5513,)
    # 8-bit quantisation step is 1/128
    assert np.max(np.abs(y - x[: y.shape[0]])) < 2 / 128


def test_96k_six_channels_to_mono_resampled(tmp_path):
    sr = 96000
    t = np.arange(sr // 2) / sr
    # Different content per channel so that averaging is observable.
    chans = np.stack([0.1 * (c + 1) * np.sin(2 * np.pi * 1000 * t) for c in range(6)], axis=1).astype(np.float32)
    p = tmp_path / "surround.wav"
    sf.write(p, chans, sr, subtype="FLOAT")
    info = audio_info(p)
    assert (info.channels, info.sample_rate) == (6, sr)
    y = load_audio(p, 32000)
    assert y.ndim == 1 and y.shape == (16000,)
    expected = chans.mean(axis=1)[::3]  # 1 kHz tone is far below Nyquist, decimation by 3 ~ resampling
    # Ignore the filter edges.
    assert np.max(np.abs(y[200:-200] - expected[200:-200])) < 1e-2
    rms = np.sqrt(np.mean(y[200:-200] ** 2))
    assert rms == pytest.approx(0.35 / np.sqrt(2), rel=0.02)


def test_resample_preserves_frequency():
    x = _tone(44100, 1.0, freq=1000.0)
    y = resample(x, 44100, 32000)
    assert y.shape == (32000,)
    spec = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spec) * 32000 / len(y) - 1000.0) <= 1.0


@pytest.mark.parametrize("fmt,subtype,ext", [("OGG", "VORBIS", "ogg"), ("MP3", "MPEG_LAYER_III", "mp3"),
                                             ("FLAC", "PCM_16", "flac")])
def test_compressed_formats(tmp_path, fmt, subtype, ext):
    if fmt not in sf.available_formats() or subtype not in sf.available_subtypes(fmt):
        pytest.skip(f"this libsndfile build cannot write {fmt}/{subtype}")
    p = tmp_path / f"a.{ext}"
    x = _tone(44100, 1.0, channels=2)
    sf.write(p, x, 44100, format=fmt, subtype=subtype)
    y = load_audio(p, 32000)
    # mp3 encoders add priming samples; allow a few ms of slack
    assert abs(y.shape[0] - 32000) < 32000 * 0.1
    spec = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spec) * 32000 / len(y) - 440.0) < 5.0


def test_very_short_clip(tmp_path):
    p = tmp_path / "short.wav"
    sf.write(p, _tone(44100, 0.05), 44100)
    assert audio_info(p).duration == pytest.approx(0.05, abs=1e-4)
    y = load_audio(p, 32000)
    assert y.shape == (1600,)


def test_offset_and_max_seconds(tmp_path):
    sr = 8000
    x = np.arange(sr * 3, dtype=np.float32) / (sr * 3)  # ramp: position is readable from value
    p = tmp_path / "ramp.wav"
    sf.write(p, x, sr, subtype="FLOAT")
    y = load_audio(p, sr, offset_seconds=1.0, max_seconds=0.5)
    np.testing.assert_allclose(y, x[sr: sr + sr // 2])
    assert "past the end" in _one_line_error(p, sr, offset_seconds=5.0)
    with pytest.raises(AudioError, match="max_seconds"):
        load_audio(p, sr, max_seconds=0)


def test_long_file_reads_only_needed_frames(tmp_path, monkeypatch):
    """A 10-minute file cropped to 10 s must not be decoded fully."""
    sr = 8000
    p = tmp_path / "long.wav"
    with sf.SoundFile(p, "w", samplerate=sr, channels=1, subtype="PCM_16") as f:
        block = _tone(sr, 60.0, amp=0.1)
        for _ in range(10):
            f.write(block)
    assert audio_info(p).duration == pytest.approx(600.0)

    requested: list[int] = []
    real_read = sf.SoundFile.read

    def spy(self, frames=-1, *args, **kwargs):
        requested.append(frames)
        return real_read(self, frames, *args, **kwargs)

    monkeypatch.setattr(sf.SoundFile, "read", spy)
    y = load_audio(p, 16000, offset_seconds=300.0, max_seconds=10.0)
    assert y.shape == (160000,)
    # The crop plus the resampling filter's reach on each side (well under 0.1 s here).
    assert len(requested) == 1 and sr * 10 < requested[0] < sr * 10 + sr // 10


@pytest.mark.parametrize("sr_in,sr_out,channels", [(44100, 32000, 2), (48000, 32000, 1), (22050, 32000, 2),
                                                     (16000, 44100, 1), (32000, 32000, 2)])
def test_a_crop_is_a_slice_of_the_whole_file_signal_bit_for_bit(tmp_path, sr_in, sr_out, channels):
    """Decoding a crop equals decoding the whole file and slicing it, to the bit (the audio cache relies on it)."""
    rng = np.random.default_rng(sr_in + channels)
    p = tmp_path / "noise.wav"
    sf.write(p, (0.3 * rng.standard_normal((int(2.3 * sr_in), channels))).clip(-1, 1), sr_in, subtype="PCM_16")
    whole = load_audio(p, sr_out)
    assert whole.shape == (-(-int(2.3 * sr_in) * sr_out // sr_in),)
    for offset, seconds in [(0.0, 1.0), (0.01, 0.5), (0.37, 1.2), (1.0, 5.0), (2.29, 0.2), (0.5, None)]:
        crop = load_audio(p, sr_out, offset_seconds=offset, max_seconds=seconds)
        start = round(offset * sr_out)
        stop = len(whole) if seconds is None else min(len(whole), start + round(seconds * sr_out))
        assert crop.dtype == np.float32
        assert np.array_equal(crop.view(np.uint32), whole[start:stop].view(np.uint32)), (offset, seconds)


def test_bad_arguments(tmp_path):
    p = tmp_path / "a.wav"
    sf.write(p, _tone(8000, 0.1), 8000)
    with pytest.raises(AudioError, match="sample rate"):
        load_audio(p, 0)
    with pytest.raises(AudioError, match="offset"):
        load_audio(p, 8000, offset_seconds=-1)


def test_fast_stereo_mix_and_cached_filter_give_the_bits_of_the_plain_calls():
    from scipy.signal import resample_poly

    from bench.data.audio import _mono

    rng = np.random.default_rng(3)
    pcm = rng.integers(-32768, 32768, size=(50_000, 2)).astype(np.float32) / 32768  # as libsndfile decodes PCM_16
    floats = np.concatenate([pcm, rng.standard_normal((50_000, 2)).astype(np.float32) * 3,
                             np.array([[1.0, 1.0], [-1.0, -1.0], [3e38, 3e38], [1e-45, 0.0]], dtype=np.float32)])
    with np.errstate(over="ignore"):  # 3e38 + 3e38 overflows to inf in both
        for data in (pcm, floats):
            assert np.array_equal(_mono(data).view(np.uint32), data.mean(axis=1, dtype=np.float32).view(np.uint32))
    x = _mono(pcm)
    for orig, target in ((44100, 32000), (48000, 16000), (16000, 44100)):
        g = math.gcd(orig, target)
        plain = resample_poly(x, target // g, orig // g).astype(np.float32)
        assert np.array_equal(resample(x, orig, target).view(np.uint32), plain.view(np.uint32)), (orig, target)
