"""Write tests/data/passt_hear21_reference.json: PaSST front-end numbers from hear21passt's own code.

The numbers come from ``hear21passt.models.preprocess.AugmentMelSTFT`` (hear21passt 0.0.26, the
version the ``passt`` extra installs; repository kkoutini/passt_hear21, file
hear21passt/models/preprocess.py) and from the function it calls for its mel filters,
``torchaudio.compliance.kaldi.get_mel_banks`` (torchaudio 2.11.1, file
torchaudio/compliance/kaldi.py). tests/test_passt_frontend.py compares bench's re-implementation
(plugins/encoders/passt_frontend.py) against them.

Why the detour: AugmentMelSTFT imports torchaudio, whose compiled wheels need their matching torch
and do not install beside the torch bench uses. get_mel_banks is pure Python, though, and with the
masks off (freqm=0, timem=0) AugmentMelSTFT uses nothing else of torchaudio. So this script takes
the real ``torchaudio/compliance/kaldi.py`` out of the torchaudio wheel, places it in a temporary
``torchaudio`` package that holds only that module, and puts that package first on sys.path of this
process alone. How the file was produced (2026-11-30, torch 2.14, CPU):

    pip download --no-deps "torchaudio==2.11.*" -d /tmp/ta
    .venv/bin/python tests/data/make_passt_reference.py /tmp/ta/torchaudio-2.11.1-*.whl

Regenerate only on purpose: the test's point is that these numbers do not move.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

OUT = Path(__file__).with_name("passt_hear21_reference.json")
SR = 32000
# PaSST's training-time mel jitter reaches (fmin + 0..9, fmax + 1000 - 0..1999) Hz around (0, 15000).
BANK_RANGES = [(0.0, 15000.0), (9.0, 14001.0), (0.0, 16000.0), (5.0, 15321.0)]
TRAIN_SEEDS = (5, 11)


def test_signal(seconds: float = 1.0):
    """0.5 sin(2 pi 1 kHz t) + 0.25 linear chirp 100 Hz -> 12 kHz, float32 (as in the test)."""
    import numpy as np

    t = np.arange(int(seconds * SR)) / SR
    chirp_phase = 2 * np.pi * (100.0 * t + 0.5 * (12000.0 - 100.0) / seconds * t**2)
    return (0.5 * np.sin(2 * np.pi * 1000.0 * t) + 0.25 * np.sin(chirp_phase)).astype(np.float32)


def noise_signal(seconds: float = 0.5):
    """Seeded Gaussian noise at 0.1, float32: every mel band gets energy."""
    import numpy as np

    return (0.1 * np.random.default_rng(0).standard_normal(int(seconds * SR))).astype(np.float32)


def install_kaldi_only_torchaudio(wheel: Path, into: Path) -> str:
    """A ``torchaudio`` package in ``into`` holding the wheel's compliance/kaldi.py and nothing else."""
    with zipfile.ZipFile(wheel) as archive:
        kaldi = archive.read("torchaudio/compliance/kaldi.py")
        version = next((n.split("/")[0].removesuffix(".dist-info").split("-")[1] for n in archive.namelist()
                        if n.endswith(".dist-info/METADATA")), "?")
    package = into / "torchaudio"
    (package / "compliance").mkdir(parents=True)
    (package / "__init__.py").write_text(
        f'"""Only torchaudio.compliance.kaldi, copied from {wheel.name}."""\n'
        f"__version__ = {version!r}\nfrom torchaudio import compliance  # noqa: E402\n")
    (package / "compliance" / "__init__.py").write_text("from torchaudio.compliance import kaldi\n")
    (package / "compliance" / "kaldi.py").write_bytes(kaldi)
    sys.path.insert(0, str(into))
    return version


def sparse_rows(banks) -> list[dict]:
    """Each filter row as its first and last non-zero bin and the values between them."""
    rows = []
    for row in banks:
        nonzero = (row != 0).nonzero().flatten()
        first, last = int(nonzero[0]), int(nonzero[-1])
        rows.append({"first": first, "last": last, "values": [round(float(v), 8) for v in row[first : last + 1]]})
    return rows


def rounded(matrix) -> list[list[float]]:
    return [[round(float(v), 5) for v in row] for row in matrix]


def main(wheel: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        torchaudio_version = install_kaldi_only_torchaudio(wheel, Path(tmp))
        import torch
        import torchaudio
        from hear21passt.models.preprocess import AugmentMelSTFT

        assert Path(torchaudio.__file__).is_relative_to(Path(tmp)), torchaudio.__file__
        banks = {}
        for fmin, fmax in BANK_RANGES:
            mel, _ = torchaudio.compliance.kaldi.get_mel_banks(128, 1024, SR, fmin, fmax, vtln_low=100.0,
                                                               vtln_high=-500.0, vtln_warp_factor=1.0)
            banks[f"{fmin:g}-{fmax:g}"] = {"fmin": fmin, "fmax": fmax, "shape": list(mel.shape),
                                           "sum": float(mel.double().sum()), "rows": sparse_rows(mel)}
        # The extractor PaSST's AudioSet model uses (hear21passt/base.py: get_basic_model), masks off.
        theirs = AugmentMelSTFT(n_mels=128, sr=SR, win_length=800, hopsize=320, n_fft=1024, freqm=0, timem=0,
                                htk=False, fmin=0.0, fmax=None, norm=1, fmin_aug_range=10, fmax_aug_range=2000)
        signals = {"sine_chirp_1s": torch.from_numpy(test_signal())[None],
                   "noise_0.5s": torch.from_numpy(noise_signal())[None]}
        with torch.no_grad():
            evaluated = {name: rounded(theirs.eval()(x)[0]) for name, x in signals.items()}
            trained = {}
            for seed in TRAIN_SEEDS:
                torch.manual_seed(seed)
                trained[str(seed)] = rounded(theirs.train()(signals["noise_0.5s"])[0])
    reference = {
        "about": "hear21passt's AugmentMelSTFT and torchaudio's get_mel_banks; "
                 "made by tests/data/make_passt_reference.py",
        "versions": {"hear21passt": metadata.version("hear21passt"), "torchaudio": torchaudio_version,
                     "torch": torch.__version__},
        "sample_rate": SR,
        "signals": {"sine_chirp_1s": "0.5 sin(2 pi 1000 t) + 0.25 chirp 100->12000 Hz, 1 s, float32",
                    "noise_0.5s": "0.1 * numpy default_rng(0).standard_normal(16000), float32"},
        "mel_banks": banks,
        "eval": evaluated,
        "train_masks_off": {"signal": "noise_0.5s", "note": "torch.manual_seed(seed), then one forward in train "
                            "mode with freqm=0, timem=0: only the mel-range jitter is random", "outputs": trained},
    }
    assert all(math.isfinite(v) for rows in evaluated.values() for row in rows for v in row)
    fd, tmp_out = tempfile.mkstemp(dir=OUT.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        json.dump(reference, handle, separators=(",", ":"))
        handle.write("\n")
    os.replace(tmp_out, OUT)
    print(f"wrote {OUT} ({OUT.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/data/make_passt_reference.py PATH/torchaudio-2.11.*.whl")
    main(Path(sys.argv[1]))
