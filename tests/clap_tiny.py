"""A tiny random CLAP saved like a hub checkpoint (config, weights, processor, tokenizer): no download."""

from __future__ import annotations

import json
from pathlib import Path


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte-level alphabet (what RoBERTa's tokenizer maps bytes to)."""
    visible = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    codes, extra = visible[:], 0
    for byte in range(256):
        if byte not in visible:
            visible.append(byte)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(visible, map(chr, codes)))


def save_tiny_clap(directory: Path, *, truncation: str = "rand_trunc", fusion: bool = False, seed: int = 0) -> Path:
    """Save a ~50k-parameter ClapModel with a character-level RoBERTa tokenizer into ``directory``."""
    import torch
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel, ClapProcessor, RobertaTokenizer

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokens = ["<s>", "<pad>", "</s>", "<unk>", *_bytes_to_unicode().values(), "<mask>"]
    (directory / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
    (directory / "merges.txt").write_text("#version: 0.2\n")  # no merges: one token per byte
    tokenizer = RobertaTokenizer(str(directory / "vocab.json"), str(directory / "merges.txt"), model_max_length=128)
    config = ClapConfig(
        text_config={"vocab_size": len(tokens), "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
                     "intermediate_size": 32, "max_position_embeddings": 130},
        audio_config={"depths": [1, 1], "num_attention_heads": [1, 2], "patch_embeds_hidden_size": 8,
                      "hidden_size": 16, "enable_fusion": fusion},
        projection_dim=8,
    )
    torch.manual_seed(seed)
    ClapModel(config).save_pretrained(directory)
    extractor = ClapFeatureExtractor(truncation=truncation, padding="repeatpad")
    ClapProcessor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(directory)
    return directory
