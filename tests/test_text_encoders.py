"""Built-in text encoders: the offline MiniLM, caption cleaning, and the fail-fast path for missing models."""

from __future__ import annotations

import time

import pytest
import torch

from bench.errors import ConfigError
from bench_plugins.encoders._text_model import clean_caption
from bench_plugins.encoders.text import build_hf, build_minilm


def test_clean_caption_lowercases_and_strips_punctuation():
    assert clean_caption("A Dog barks, twice!  Then... silence.") == "a dog barks twice then silence"


@pytest.fixture(scope="module")
def minilm():
    return build_minilm()


def test_minilm_is_offline_384d_mean_pooled_and_frozen_by_default(minilm):
    assert minilm.embed_dim == 384 and minilm.pretrained
    assert not any(p.requires_grad for p in minilm.parameters())
    with torch.no_grad():
        out = minilm(["a dog barks", "rain on a tin roof", "a dog barks"])
    assert out.shape == (3, 384) and torch.isfinite(out).all()
    assert torch.allclose(out[0], out[2])
    # Mean pooling over the tokens the attention mask keeps: padding must not change an embedding.
    with torch.no_grad():
        alone = minilm(["a dog barks"])
        padded = minilm(["a dog barks", "a much longer caption that forces padding of the first one"])
    assert torch.allclose(alone[0], padded[0], atol=1e-5)
    # Related captions are closer than unrelated ones (the weights are the pretrained ones, not random).
    a, b, c = torch.nn.functional.normalize(minilm(["a dog barks", "a puppy is barking", "heavy rain falls"]), dim=1)
    assert float(a @ b) > float(a @ c) + 0.2


def test_minilm_can_be_fine_tuned():
    encoder = build_minilm(freeze=False)
    assert all(p.requires_grad for p in encoder.parameters())


def test_missing_hf_model_fails_fast_with_how_to_supply_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    started = time.monotonic()
    with pytest.raises(ConfigError) as info:
        build_hf(model="roberta-large")
    assert time.monotonic() - started < 60  # generous: the point is not a minute of hub retries
    message = str(info.value)
    assert "roberta-large" in message and "--set hf.model=" in message and "\n" not in message


def test_bad_pooling_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="pooling"):
        from bench_plugins.encoders._text_model import TransformerTextEncoder, minilm_path

        TransformerTextEncoder(str(minilm_path()), pooling="max", max_length=32, freeze=True, dropout=None,
                               clean_captions=False, local_only=True)
