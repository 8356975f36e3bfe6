"""A GGUF file read as a Hugging Face-style checkpoint, without torch or transformers.

The `gguf` package memory-maps the file; `tensor()` dequantizes one weight to fp32 numpy under its Hugging Face
name when asked, so an export holds one weight at a time, never the whole fp32 model. The config, the special
tokens, the chat template and a `tokenizers` tokenizer come from the file's metadata."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ExportError

ARCHITECTURES = {"qwen2": "Qwen2ForCausalLM", "llama": "LlamaForCausalLM"}
# llama.cpp's names -> Hugging Face's, per layer and for the whole model.
LAYER = {"attn_norm.weight": "input_layernorm.weight", "ffn_norm.weight": "post_attention_layernorm.weight",
         "attn_q.weight": "self_attn.q_proj.weight", "attn_q.bias": "self_attn.q_proj.bias",
         "attn_k.weight": "self_attn.k_proj.weight", "attn_k.bias": "self_attn.k_proj.bias",
         "attn_v.weight": "self_attn.v_proj.weight", "attn_v.bias": "self_attn.v_proj.bias",
         "attn_output.weight": "self_attn.o_proj.weight", "ffn_gate.weight": "mlp.gate_proj.weight",
         "ffn_up.weight": "mlp.up_proj.weight", "ffn_down.weight": "mlp.down_proj.weight"}
MODEL = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
         "output.weight": "lm_head.weight"}
# The pre-tokenizer regex each `tokenizer.ggml.pre` names (llama.cpp's llama-vocab.cpp, the Hugging Face
# tokenizer.json of the same models).
PRE_TOKENIZERS = {
    "qwen2": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    "llama-bpe": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
}
CONTROL, UNUSED = 3, 5  # tokenizer.ggml.token_type values (llama.cpp's llama_token_type) that are special tokens
ROWS = 8192
SPECIAL_IDS = {"bos": "bos_token_id", "eos": "eos_token_id", "pad": "padding_token_id", "unk": "unknown_token_id"}


class GGUFCheckpoint:
    def __init__(self, path: Path):
        from gguf import GGUFReader

        self.path = path
        try:
            self.reader = GGUFReader(path)
        except Exception as e:
            raise ExportError(f"cannot read {path} as GGUF: {e}") from e
        arch = self._field("general.architecture")
        if arch not in ARCHITECTURES:
            raise ExportError(f"{path.name}: GGUF architecture {arch!r}; plusls reads {', '.join(ARCHITECTURES)} "
                              "GGUF files (export other models from a Hugging Face checkpoint)")
        self.arch = arch
        self.tensors = {self._hf_name(t.name): t for t in self.reader.tensors}
        self.config = self._config()

    def _field(self, key: str, default=None):
        field = self.reader.fields.get(key)
        return default if field is None else field.contents()

    def _hf_name(self, name: str) -> str:
        if name in MODEL:
            return MODEL[name]
        if name.startswith("blk."):
            _, layer, rest = name.split(".", 2)
            if rest in LAYER:
                return f"model.layers.{layer}.{LAYER[rest]}"
        return name  # unknown to plusls (rope_freqs, ...): kept under its own name, never asked for

    def _config(self) -> dict:
        a = self.arch
        hidden, heads = int(self._field(f"{a}.embedding_length")), int(self._field(f"{a}.attention.head_count"))
        return {
            "architectures": [ARCHITECTURES[a]], "model_type": a, "hidden_act": "silu",
            "hidden_size": hidden, "num_attention_heads": heads,
            "num_key_value_heads": int(self._field(f"{a}.attention.head_count_kv", heads)),
            "num_hidden_layers": int(self._field(f"{a}.block_count")),
            "intermediate_size": int(self._field(f"{a}.feed_forward_length")),
            "rms_norm_eps": float(self._field(f"{a}.attention.layer_norm_rms_epsilon")),
            "rope_theta": float(self._field(f"{a}.rope.freq_base", 10000.0)),
            "max_position_embeddings": int(self._field(f"{a}.context_length")),
            "vocab_size": int(self.tensors["model.embed_tokens.weight"].shape[-1]),
            "tie_word_embeddings": "lm_head.weight" not in self.tensors,
            "rope_scaling": self._field(f"{a}.rope.scaling.type"),
        }

    def __contains__(self, name: str) -> bool:
        return name in self.tensors

    def tensor(self, name: str) -> np.ndarray:
        """One weight, dequantized to fp32, in Hugging Face's layout ([out, in] for a linear layer)."""
        from gguf.quants import dequantize

        t = self.tensors[name]
        shape = [int(d) for d in reversed(t.shape)]  # ggml lists dimensions innermost first
        rows = t.data.reshape(shape[0], -1) if len(shape) == 2 else t.data.reshape(1, -1)
        w = np.empty((rows.shape[0], int(np.prod(shape)) // rows.shape[0]), np.float32)
        for start in range(0, len(rows), ROWS):  # a slice at a time: the dequantizer's temporaries stay small
            w[start:start + ROWS] = dequantize(rows[start:start + ROWS], t.tensor_type).reshape(-1, w.shape[1])
        w = w.reshape(shape)
        if self.arch == "llama" and name.endswith(("q_proj.weight", "k_proj.weight")):
            w = _unpermute(w, self.config["num_attention_heads"] if "q_proj" in name
                           else self.config["num_key_value_heads"])
        return w

    def special_tokens(self) -> dict[str, int]:
        ids = {name: self._field(f"tokenizer.ggml.{key}") for name, key in SPECIAL_IDS.items()}
        return {name: int(i) for name, i in ids.items() if i is not None}

    def chat_template(self) -> str | None:
        return self._field("tokenizer.chat_template")

    def tokenizer_supported(self) -> bool:
        return self._field("tokenizer.ggml.model") == "gpt2" and self._field("tokenizer.ggml.pre") in PRE_TOKENIZERS

    def tokenizer(self):
        """The byte-level BPE tokenizer the file describes, built as transformers builds it from the same file:
        every control and unused token is a special added token."""
        from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

        if not self.tokenizer_supported():
            raise ExportError(f"{self.path.name}: plusls builds only byte-level BPE tokenizers with the "
                              f"{', '.join(PRE_TOKENIZERS)} pre-tokenizers from GGUF")
        pre = self._field("tokenizer.ggml.pre")
        tokens = self._field("tokenizer.ggml.tokens")
        types = self._field("tokenizer.ggml.token_type")
        merges = [tuple(m.split(" ", 1)) for m in self._field("tokenizer.ggml.merges")]
        tok = Tokenizer(models.BPE({t: i for i, t in enumerate(tokens)}, merges, fuse_unk=False, byte_fallback=False,
                                   continuing_subword_prefix="", end_of_word_suffix=""))
        if self.arch == "qwen2":
            tok.normalizer = normalizers.NFC()
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(PRE_TOKENIZERS[pre]), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
        tok.decoder = decoders.ByteLevel()
        tok.add_special_tokens([AddedToken(t, normalized=False, special=True)
                                for t, k in zip(tokens, types) if k in (CONTROL, UNUSED)])
        return tok


def _unpermute(w: np.ndarray, heads: int) -> np.ndarray:
    """Undo llama.cpp's interleaving of each head's rotary halves in q/k (convert_hf_to_gguf.py's permute)."""
    return w.reshape(heads, w.shape[0] // heads // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)
