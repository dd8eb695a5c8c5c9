"""Tests of PaSST's front end (plugins/encoders/passt_frontend.py).

Against hear21passt's own code
------------------------------
tests/data/passt_hear21_reference.json holds numbers computed by hear21passt 0.0.26's
``AugmentMelSTFT`` (hear21passt/models/preprocess.py) and by the torchaudio 2.11.1 function it
calls for its filters, ``torchaudio.compliance.kaldi.get_mel_banks``: mel filters at the edges of
the training-time jitter, eval-mode spectrograms of two signals, and train-mode outputs (masks off)
after ``torch.manual_seed``. tests/data/make_passt_reference.py made them; its docstring says how
(torchaudio does not install beside the torch bench uses, so the script runs the real kaldi.py
out of the torchaudio wheel). Where ``import torchaudio`` works, the live comparison runs too.

An independent float64 derivation
---------------------------------
tests/data/passt_reference.json was computed once with ``python tests/test_passt_frontend.py
--regenerate`` by the float64 numpy functions below, which are written independently of both
torch implementations:
They were computed once with ``python tests/test_passt_frontend.py --regenerate`` by the float64
numpy functions below, which are written independently of the torch implementation:

* ``np_kaldi_banks`` builds each Kaldi triangle with ``np.interp`` through the three mel-scale
  points (left edge, 0), (centre, 1), (right edge, 0) -- Kaldi's definition (mel = 1127 ln(1 + f/700),
  ``n_mels + 2`` edges equally spaced in mel between fmin and fmax, FFT bin k at k * sr / n_fft for
  k < n_fft / 2), instead of the torch code's min of two slopes;
* ``np_passt_spectrogram`` frames the reflect-padded, pre-emphasised signal by hand, applies the
  800-point symmetric Hann window centred in 1024 points (``np.hanning``), and takes
  ``np.fft.rfft`` instead of ``torch.stft``.

The JSON pins the torch implementation to those values (a few filter rows, checksums, summary
statistics and a slice of the spectrogram of a 1 kHz sine plus a chirp), so that a later change
of either implementation is caught. Regenerate only on purpose.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from bench_plugins.encoders.passt_frontend import PasstMelFrontend, kaldi_mel_banks

REF_PATH = Path(__file__).parent / "data" / "passt_reference.json"
SR = 32000
BANK_ROWS = (0, 1, 63, 127)


# ---------------------------------------------------------------- independent numpy reference
def np_mel(f: np.ndarray | float) -> np.ndarray:
    return 1127.0 * np.log(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def np_kaldi_banks(n_mels: int, n_fft: int, sr: float, fmin: float, fmax: float) -> np.ndarray:
    """[n_mels, n_fft // 2 + 1] float64, last (Nyquist) column zero."""
    edges = np.linspace(np_mel(fmin), np_mel(fmax), n_mels + 2)
    fft_mel = np_mel(np.arange(n_fft // 2) * sr / n_fft)
    out = np.zeros((n_mels, n_fft // 2 + 1))
    for m in range(n_mels):
        out[m, : n_fft // 2] = np.interp(fft_mel, edges[m : m + 3], [0.0, 1.0, 0.0], left=0.0, right=0.0)
    return out


def np_passt_spectrogram(x: np.ndarray, fmin: float = 0.0, fmax: float = 15000.0) -> np.ndarray:
    """PaSST features of a 1-D signal, float64: [128, frames]."""
    n_fft, hop, win = 1024, 320, 800
    y = x[1:].astype(np.float64) - 0.97 * x[:-1].astype(np.float64)
    padded = np.pad(y, n_fft // 2, mode="reflect")
    window = np.zeros(n_fft)
    offset = (n_fft - win) // 2
    window[offset : offset + win] = np.hanning(win)
    n_frames = 1 + len(y) // hop
    frames = np.stack([padded[i * hop : i * hop + n_fft] * window for i in range(n_frames)])
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2  # [frames, 513]
    mel = np_kaldi_banks(128, n_fft, SR, fmin, fmax) @ power.T
    return (np.log(mel + 1e-5) + 4.5) / 5.0


def test_signal(seconds: float = 1.0) -> np.ndarray:
    """0.5 * sin(2 pi 1 kHz t) + 0.25 * linear chirp 100 Hz -> 12 kHz, float32."""
    t = np.arange(int(seconds * SR)) / SR
    chirp_phase = 2 * np.pi * (100.0 * t + 0.5 * (12000.0 - 100.0) / seconds * t**2)
    return (0.5 * np.sin(2 * np.pi * 1000.0 * t) + 0.25 * np.sin(chirp_phase)).astype(np.float32)


test_signal.__test__ = False  # a helper, not a pytest test


def make_reference() -> dict:
    banks = np_kaldi_banks(128, 1024, SR, 0.0, 15000.0)
    spec = np_passt_spectrogram(test_signal())
    rows = {}
    for r in BANK_ROWS:
        nz = np.nonzero(banks[r])[0]
        rows[str(r)] = {"first": int(nz[0]), "last": int(nz[-1]), "values": banks[r, nz[0] : nz[-1] + 1].tolist()}
    return {
        "about": "float64 numpy reference for PaSST's front end; see tests/test_passt_frontend.py",
        "banks": {
            "shape": list(banks.shape),
            "sum": float(banks.sum()),
            "sum_sq": float((banks**2).sum()),
            "row_sums": banks.sum(axis=1).tolist(),
            "rows": rows,
        },
        "spectrogram": {
            "signal": "0.5 sin(2 pi 1000 t) + 0.25 chirp 100->12000 Hz, 1 s at 32 kHz, float32",
            "shape": list(spec.shape),
            "mean": float(spec.mean()),
            "std": float(spec.std()),
            "min": float(spec.min()),
            "max": float(spec.max()),
            "slice_rows": "0::16",
            "slice_cols": "0::10",
            "slice": spec[::16, ::10].tolist(),
        },
    }


@pytest.fixture(scope="module")
def ref() -> dict:
    return json.loads(REF_PATH.read_text())


def eval_frontend(**kw) -> PasstMelFrontend:
    return PasstMelFrontend(**kw).eval()


# ---------------------------------------------------------------- mel banks
def test_banks_match_stored_reference(ref: dict) -> None:
    banks = torch.nn.functional.pad(kaldi_mel_banks(128, 1024, SR, 0.0, 15000.0), (0, 1)).double()
    stored = ref["banks"]
    assert list(banks.shape) == stored["shape"] == [128, 513]
    assert banks.sum().item() == pytest.approx(stored["sum"], rel=1e-5)
    assert (banks**2).sum().item() == pytest.approx(stored["sum_sq"], rel=1e-5)
    np.testing.assert_allclose(banks.sum(1).numpy(), stored["row_sums"], rtol=1e-4, atol=1e-5)
    for r, row in stored["rows"].items():
        nz = torch.nonzero(banks[int(r)] > 1e-4).flatten()  # float32 leaves ~1e-5 at an exact edge
        assert (int(nz[0]), int(nz[-1])) == (row["first"], row["last"])
        np.testing.assert_allclose(banks[int(r), row["first"] : row["last"] + 1].numpy(), row["values"], atol=2e-5)


@pytest.mark.parametrize("fmin,fmax", [(0.0, 15000.0), (7.0, 14001.0), (9.0, 16000.0), (300.0, 8000.0)])
def test_banks_match_numpy_formula(fmin: float, fmax: float) -> None:
    ours = kaldi_mel_banks(128, 1024, SR, fmin, fmax)
    assert ours.dtype == torch.float32
    np.testing.assert_allclose(ours.double().numpy(), np_kaldi_banks(128, 1024, SR, fmin, fmax)[:, :512], atol=2e-5)


def test_banks_reject_bad_ranges() -> None:
    with pytest.raises(ValueError):
        kaldi_mel_banks(128, 1024, SR, 0.0, 16001.0)
    with pytest.raises(ValueError):
        kaldi_mel_banks(128, 1024, SR, 500.0, 400.0)


# ---------------------------------------------------------------- spectrogram
def test_spectrogram_matches_stored_reference(ref: dict) -> None:
    x = torch.from_numpy(test_signal())[None]
    spec = eval_frontend()(x)[0].double()
    stored = ref["spectrogram"]
    assert list(spec.shape) == stored["shape"] == [128, 100]
    assert spec.mean().item() == pytest.approx(stored["mean"], abs=1e-4)
    assert spec.std().item() == pytest.approx(stored["std"], abs=1e-4)
    assert spec.min().item() == pytest.approx(stored["min"], abs=1e-3)
    assert spec.max().item() == pytest.approx(stored["max"], abs=1e-4)
    np.testing.assert_allclose(spec[::16, ::10].numpy(), stored["slice"], atol=2e-3)


def test_spectrogram_matches_numpy_everywhere() -> None:
    sig = test_signal(0.5)
    ours = eval_frontend()(torch.from_numpy(sig)[None])[0].double().numpy()
    theirs = np_passt_spectrogram(sig)
    assert ours.shape == theirs.shape
    # float32 vs float64: log(x + 1e-5) magnifies relative error only where the power is tiny.
    np.testing.assert_allclose(ours, theirs, atol=2e-3)
    assert np.abs(ours - theirs).mean() < 1e-4


def test_sine_peaks_in_the_mel_bin_centred_nearest_1khz() -> None:
    t = torch.arange(SR) / SR
    spec = eval_frontend()(torch.sin(2 * math.pi * 1000.0 * t)[None])[0]
    edges = np.linspace(np_mel(0.0), np_mel(15000.0), 130)
    nearest = int(np.argmin(np.abs(edges[1:-1] - np_mel(1000.0))))
    assert int(spec[:, 10:-10].mean(1).argmax()) == nearest
    # silence maps to log(1e-5) normalised: (ln 1e-5 + 4.5) / 5
    silent = eval_frontend()(torch.zeros(1, SR))
    assert torch.allclose(silent, torch.full_like(silent, (math.log(1e-5) + 4.5) / 5), atol=1e-6)


def test_frame_count_and_batch_independence() -> None:
    fe = eval_frontend()
    x = torch.randn(3, 10 * SR) * 0.1
    out = fe(x)
    assert out.shape == (3, 128, 1000)  # 1 + (T - 1) // 320 frames: the 1000 frames ap468 expects
    torch.testing.assert_close(fe(x[1:2]), out[1:2], atol=1e-5, rtol=0)


# ---------------------------------------------------------------- train vs eval
def test_eval_is_deterministic_and_draws_no_random_numbers() -> None:
    fe = eval_frontend()
    x = torch.randn(2, SR) * 0.1
    state = torch.get_rng_state()
    a, b = fe(x), fe(x)
    assert torch.equal(a, b)
    assert torch.equal(state, torch.get_rng_state())
    assert fe.last_mel_range == (0.0, 15000.0)


def test_training_mel_range_jitter() -> None:
    fe = PasstMelFrontend().train()
    torch.manual_seed(0)
    draws = [fe.sample_mel_range() for _ in range(400)]
    fmins = {d[0] for d in draws}
    fmaxs = [d[1] for d in draws]
    assert fmins <= {float(i) for i in range(10)} and len(fmins) >= 8  # fmin + U{0..9}
    assert all(14001.0 <= f <= 16000.0 for f in fmaxs)  # 15000 + 1000 - U{0..1999}
    assert min(fmaxs) < 14200 and max(fmaxs) > 15800
    x = torch.randn(1, SR) * 0.1
    fe(x)
    lo, hi = fe.last_mel_range
    assert 0 <= lo < 10 and 14001 <= hi <= 16000


def test_training_masks_are_per_row_bands_filled_with_log_zero() -> None:
    # No bank jitter, so the only training-time difference left is SpecAugment masking.
    fe = PasstMelFrontend(fmin_aug_range=1, fmax_aug_range=1)
    x = (torch.randn(1, 3 * SR) * 0.1).repeat(8, 1)
    clean = fe.eval()(x)
    torch.manual_seed(3)
    masked = fe.train()(x)
    filled = (0.0 + 4.5) / 5.0  # masks write 0 in the log domain, before normalisation
    diff = ~torch.isclose(masked, clean, atol=1e-6)
    widths_f, widths_t = set(), set()
    for row in range(8):
        band_rows = (masked[row] == filled).all(dim=1).nonzero().flatten()
        band_cols = (masked[row] == filled).all(dim=0).nonzero().flatten()
        for hit, limit, widths in ((band_rows, 48, widths_f), (band_cols, 192, widths_t)):
            if hit.numel():
                assert int(hit[-1] - hit[0]) + 1 == hit.numel() < limit  # one contiguous band
            widths.add(hit.numel())
        # nothing outside the two bands changed
        outside = torch.ones_like(diff[row])
        outside[band_rows, :] = False
        outside[:, band_cols] = False
        assert not bool(diff[row][outside].any())
    assert len(widths_f) > 1 and len(widths_t) > 1  # masks are drawn per row, not shared


def test_seeded_training_output_is_reproducible() -> None:
    fe = PasstMelFrontend().train()
    x = torch.randn(2, SR) * 0.1
    torch.manual_seed(11)
    a = fe(x)
    torch.manual_seed(11)
    b = fe(x)
    assert torch.equal(a, b)
    assert not torch.equal(a, fe.eval()(x))


def test_float32_under_autocast() -> None:
    fe = eval_frontend()
    x = torch.randn(2, SR) * 0.1
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = fe(x.bfloat16())
    assert y.dtype == torch.float32
    torch.testing.assert_close(y, fe(x.bfloat16().float()))


# ---------------------------------------------------------------- against the original
HEAR21_PATH = Path(__file__).parent / "data" / "passt_hear21_reference.json"


@pytest.fixture(scope="module")
def hear21() -> dict:
    return json.loads(HEAR21_PATH.read_text())


def noise_signal(seconds: float = 0.5) -> np.ndarray:
    """The noise signal of tests/data/make_passt_reference.py."""
    return (0.1 * np.random.default_rng(0).standard_normal(int(seconds * SR))).astype(np.float32)


noise_signal.__test__ = False


def test_hear21_reference_says_where_it_came_from(hear21: dict) -> None:
    assert hear21["versions"]["hear21passt"] == "0.0.26" and hear21["versions"]["torchaudio"].startswith("2.11")
    assert hear21["sample_rate"] == SR


@pytest.mark.parametrize("key", ["0-15000", "9-14001", "0-16000", "5-15321"])
def test_banks_match_torchaudio_get_mel_banks(hear21: dict, key: str) -> None:
    stored = hear21["mel_banks"][key]
    ours = kaldi_mel_banks(128, 1024, SR, stored["fmin"], stored["fmax"]).double().numpy()
    assert list(ours.shape) == stored["shape"] == [128, 512]
    theirs = np.zeros_like(ours)
    for index, row in enumerate(stored["rows"]):
        theirs[index, row["first"] : row["last"] + 1] = row["values"]
    # Both are float32; the two formulas for a triangle round differently by up to ~2e-5.
    np.testing.assert_allclose(ours, theirs, atol=3e-5)
    assert np.abs(ours - theirs).max(axis=1).mean() < 1e-5
    assert ours.sum() == pytest.approx(stored["sum"], rel=1e-6)


@pytest.mark.parametrize("name", ["sine_chirp_1s", "noise_0.5s"])
def test_eval_spectrogram_matches_hear21passt(hear21: dict, name: str) -> None:
    signal = test_signal() if name == "sine_chirp_1s" else noise_signal()
    ours = eval_frontend()(torch.from_numpy(signal)[None])[0].double().numpy()
    theirs = np.asarray(hear21["eval"][name])
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, atol=1e-4)  # stored to 1e-5; float32 log near the 1e-5 floor
    assert np.abs(ours - theirs).mean() < 2e-5


@pytest.mark.parametrize("seed", ["5", "11"])
def test_training_jitter_matches_hear21passt(hear21: dict, seed: str) -> None:
    # Masks off, so the mel-range draw (fmin + randint(10), then fmax + 1000 - randint(2000)) is
    # the only randomness: the same seed must give hear21passt's filters and so its output.
    frontend = PasstMelFrontend(freqm=0, timem=0).train()
    torch.manual_seed(int(seed))
    ours = frontend(torch.from_numpy(noise_signal())[None])[0].double().numpy()
    lo, hi = frontend.last_mel_range
    assert 0 <= lo <= 9 and 14001 <= hi <= 16000
    theirs = np.asarray(hear21["train_masks_off"]["outputs"][seed])
    np.testing.assert_allclose(ours, theirs, atol=1e-4)
    assert not np.allclose(ours, np.asarray(hear21["eval"]["noise_0.5s"]), atol=1e-3)  # the jitter did move it


@pytest.mark.filterwarnings("ignore:stft with return_complex=False:UserWarning")
@pytest.mark.filterwarnings("ignore:.*torch.cuda.amp.autocast:FutureWarning")
def test_matches_hear21passt_augmentmelstft() -> None:
    pytest.importorskip("torchaudio", reason="torchaudio does not import here (its wheels need their own torch); "
                        "tests/data/passt_hear21_reference.json holds hear21passt's numbers instead")
    from hear21passt.models.preprocess import AugmentMelSTFT

    theirs = AugmentMelSTFT(n_mels=128, sr=SR, win_length=800, hopsize=320, n_fft=1024, freqm=48, timem=192,
                            htk=False, fmin=0.0, fmax=None, norm=1, fmin_aug_range=10, fmax_aug_range=2000)
    ours = PasstMelFrontend()
    x = torch.randn(3, 2 * SR) * 0.1
    torch.testing.assert_close(ours.eval()(x), theirs.eval()(x), atol=1e-4, rtol=0)  # measured 2e-5
    torch.manual_seed(5)
    a = ours.train()(x)
    torch.manual_seed(5)
    b = theirs.train()(x)
    torch.testing.assert_close(a, b, atol=1e-4, rtol=0)


if __name__ == "__main__":
    if sys.argv[1:] != ["--regenerate"]:
        sys.exit("usage: python tests/test_passt_frontend.py --regenerate   (rewrites tests/data/passt_reference.json)")
    import os
    import tempfile

    REF_PATH.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=REF_PATH.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(make_reference(), fh, indent=1)
        fh.write("\n")
    os.replace(tmp, REF_PATH)
    print(f"wrote {REF_PATH}")
