"""Embedding models as single torch modules whose output is the final unit-length vector, ready for ONNX."""
from __future__ import annotations

import copy
import json
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ExportError


class SentenceEmbedder(nn.Module):
    """sentence-transformers BERT-style model: encoder -> mean (or CLS) pooling -> L2 normalise."""

    def __init__(self, encoder: nn.Module, pooling: str = "mean"):
        super().__init__()
        self.encoder = encoder
        self.pooling = pooling

    def forward(self, input_ids, attention_mask, token_type_ids):
        h = self.encoder(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)[0]
        return F.normalize(pool(h, attention_mask, self.pooling), p=2, dim=-1)


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """[batch, seq, dim] -> [batch, dim]: the [CLS] position, or the mean over the real (unmasked) tokens."""
    if pooling == "cls":
        return hidden[:, 0]
    m = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)


class CodeT5pEmbedder(nn.Module):
    """The codet5p-110m-embedding architecture (its hub repo ships it as custom code): a T5 encoder, the first
    token's hidden state, Linear(d_model -> embed_dim), L2 normalise. Parameter names match the checkpoint."""

    def __init__(self, config):
        super().__init__()
        from transformers.models.t5.modeling_t5 import T5Stack

        self.shared = nn.Embedding(config.vocab_size, config.d_model)
        enc_config = copy.deepcopy(config)
        enc_config.use_cache = False
        enc_config.is_encoder_decoder = False
        enc_config.is_decoder = False
        self.encoder = T5Stack(enc_config, self.shared)
        self.proj = nn.Linear(config.d_model, config.embed_dim)

    def forward(self, input_ids, attention_mask):
        h = self.encoder(input_ids=input_ids, attention_mask=attention_mask, return_dict=True).last_hidden_state
        return F.normalize(self.proj(h[:, 0, :]), p=2, dim=-1)


# The text-code matching cross-encoder (trained by training/matching.py), defined here so export can load it.
MAX_CODE, MAX_TEXT = 128, 32
HEAD_FILE, CONFIG_FILE = "matching_head.safetensors", "matching.json"


class MatchingModel(torch.nn.Module):
    """BERT encoder -> mean pool (or [CLS]) -> Linear(hidden, 1): the match logit of a (text, code) pair."""

    def __init__(self, encoder: torch.nn.Module, pooling: str = "mean", max_text: int = MAX_TEXT,
                 max_code: int = MAX_CODE):
        super().__init__()
        self.encoder, self.pooling = encoder, pooling
        self.max_text, self.max_code = max_text, max_code
        self.head = torch.nn.Linear(encoder.config.hidden_size, 1)
        torch.nn.init.normal_(self.head.weight, std=0.02)
        torch.nn.init.zeros_(self.head.bias)

    def score(self, input_ids, attention_mask, token_type_ids):
        h = self.encoder(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)[0]
        return self.head(pool(h, attention_mask, self.pooling)).squeeze(-1)

    def forward(self, input_ids, attention_mask, token_type_ids, labels):
        logits = self.score(input_ids, attention_mask, token_type_ids)
        return SimpleNamespace(loss=F.binary_cross_entropy_with_logits(logits, labels.float()), logits=logits)

    def save(self, out: Path) -> None:
        from safetensors.torch import save_file

        out.mkdir(parents=True, exist_ok=True)
        self.encoder.save_pretrained(out)
        save_file({k: v.contiguous() for k, v in self.head.state_dict().items()}, str(out / HEAD_FILE))
        (out / CONFIG_FILE).write_text(json.dumps({"pooling": self.pooling, "max_text": self.max_text,
                                                   "max_code": self.max_code}, indent=2) + "\n")


def is_matching_dir(src: Path) -> bool:
    return (Path(src) / HEAD_FILE).is_file()


def load_matching(src: Path) -> MatchingModel:
    """A saved matching model (out/model of a run): encoder + head, eval mode."""
    from safetensors.torch import load_file
    from transformers import AutoModel

    src = Path(src)
    cfg = json.loads((src / CONFIG_FILE).read_text()) if (src / CONFIG_FILE).is_file() else {}
    encoder = AutoModel.from_pretrained(src, dtype=torch.float32, attn_implementation="eager", add_pooling_layer=False)
    model = MatchingModel(encoder, cfg.get("pooling", "mean"), cfg.get("max_text", MAX_TEXT),
                          cfg.get("max_code", MAX_CODE))
    model.head.load_state_dict(load_file(str(src / HEAD_FILE)))
    return model.eval()


class MatchingLogits(nn.Module):
    """A training/matching.py cross-encoder as one module: (input_ids, attention_mask, token_type_ids) -> [batch]
    match logits."""

    def __init__(self, model: nn.Module, lengths: dict):
        super().__init__()
        self.model, self.lengths = model, lengths

    @classmethod
    def load(cls, src: Path) -> "MatchingLogits":
        if not is_matching_dir(src):
            raise ExportError(f"{src} is not a matching model (no matching_head.safetensors); train one with "
                              "`plusls train matching`")
        cfg = json.loads((src / CONFIG_FILE).read_text()) if (src / CONFIG_FILE).is_file() else {}
        return cls(load_matching(src), {k: int(cfg[k]) for k in ("max_text", "max_code") if k in cfg}).eval()

    def forward(self, input_ids, attention_mask, token_type_ids):
        return self.model.score(input_ids, attention_mask, token_type_ids)


def is_codet5p_embedding(config: dict) -> bool:
    return config.get("model_type") == "codet5p_embedding" or "CodeT5pEmbeddingModel" in config.get(
        "architectures", []
    )


def load_codet5p_embedding(src: Path, config: dict) -> CodeT5pEmbedder:
    from transformers import T5Config

    fields = {k: v for k, v in config.items() if k not in ("model_type", "architectures", "auto_map")}
    t5 = T5Config(**fields)
    t5.embed_dim = int(config.get("embed_dim", 256))
    model = CodeT5pEmbedder(t5)
    state = load_state_dict(src)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if k != "encoder.embed_tokens.weight"]  # tied to shared.weight
    if missing or unexpected:
        raise ExportError(f"{src} does not match the codet5p embedding architecture: missing {missing[:5]}, "
                          f"unexpected {unexpected[:5]}")
    return model.eval()


def load_sentence_embedder(src: Path) -> SentenceEmbedder:
    from transformers import AutoModel

    pooling = "mean"
    pool_cfg = src / "1_Pooling" / "config.json"
    if pool_cfg.is_file():
        cfg = json.loads(pool_cfg.read_text())
        if cfg.get("pooling_mode_cls_token") and not cfg.get("pooling_mode_mean_tokens"):
            pooling = "cls"
    encoder = AutoModel.from_pretrained(src, dtype=torch.float32, attn_implementation="eager")
    return SentenceEmbedder(encoder, pooling).eval()


def load_state_dict(src: Path) -> dict[str, torch.Tensor]:
    files = sorted(src.glob("*.safetensors"))
    if files:
        from safetensors.torch import load_file

        state: dict[str, torch.Tensor] = {}
        for f in files:
            state.update(load_file(str(f)))
        return state
    state = {}
    for f in sorted(src.glob("pytorch_model*.bin")):
        state.update(torch.load(f, map_location="cpu", weights_only=True))
    return state
