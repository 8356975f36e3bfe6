"""ONNX export of a Hugging Face EncoderDecoderModel with BERT encoder and BERT decoder (bert2bert).

optimum refuses these ("bert does not need past key values"), so the two graphs are traced here from small
modules that read the model's own weights:

- encoder_model.onnx: (input_ids, attention_mask) -> last_hidden_state
- decoder_model_merged.onnx: (encoder_attention_mask, encoder_hidden_states, input_ids, use_cache_branch,
  past_key_values.{i}.{decoder,encoder}.{key,value}) -> (logits, present.{i}.{decoder,encoder}.{key,value}),
  the inputs and outputs the runtime's Seq2SeqLM steps with. One graph serves both steps without an If node:
  the cross-attention keys are projected from `encoder_hidden_states[:, :n]` with n = 0 once use_cache_branch is
  set, and appended to the (empty on the first step) encoder past, so later steps reuse them for free.

The export's parity check compares this against the PyTorch model, so a mismatch here cannot ship."""
from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn


def is_bert2bert(config: dict) -> bool:
    return (config.get("model_type") == "encoder-decoder"
            and (config.get("encoder") or {}).get("model_type") == "bert"
            and (config.get("decoder") or {}).get("model_type") == "bert")


class _Encoder(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.bert = model.encoder

    def forward(self, input_ids, attention_mask):
        return self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


class _Decoder(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.bert, self.head = model.decoder.bert, model.decoder.cls
        cfg = model.decoder.config
        self.heads = cfg.num_attention_heads
        self.head_dim = cfg.hidden_size // cfg.num_attention_heads
        self.act = self.bert.encoder.layer[0].intermediate.intermediate_act_fn

    def split(self, x):  # [batch, len, hidden] -> [batch, heads, len, head_dim]
        return x.view(x.shape[0], x.shape[1], self.heads, self.head_dim).transpose(1, 2)

    def attend(self, q, k, v, bias):
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim) + bias
        out = torch.softmax(scores, -1) @ v
        return out.transpose(1, 2).reshape(out.shape[0], out.shape[2], -1)

    def forward(self, encoder_attention_mask, encoder_hidden_states, input_ids, use_cache_branch, *past):
        emb = self.bert.embeddings
        steps, past_len = input_ids.shape[1], past[0].shape[2]
        positions = torch.arange(steps, device=input_ids.device) + past_len
        x = emb.word_embeddings(input_ids) + emb.position_embeddings(positions)[None] \
            + emb.token_type_embeddings.weight[0]
        x = emb.LayerNorm(x)
        # New token t (at position past_len + t) sees every position up to its own.
        total = torch.arange(steps + past_len, device=input_ids.device)
        causal = torch.where(total[None, :] <= positions[:, None], 0.0, torch.finfo(torch.float32).min)
        cross = (1.0 - encoder_attention_mask[:, None, None, :].to(torch.float32)) * torch.finfo(torch.float32).min
        fresh = encoder_hidden_states.shape[1] * (1 - use_cache_branch[0].to(torch.int64))
        enc = encoder_hidden_states[:, :fresh]  # empty once the cross keys are cached
        presents = []
        for i, layer in enumerate(self.bert.encoder.layer):
            dk, dv, ek, ev = past[4 * i : 4 * i + 4]
            att = layer.attention
            k = torch.cat([dk, self.split(att.self.key(x))], 2)
            v = torch.cat([dv, self.split(att.self.value(x))], 2)
            h = self.attend(self.split(att.self.query(x)), k, v, causal[None, None])
            x = att.output.LayerNorm(att.output.dense(h) + x)
            ca = layer.crossattention
            ek = torch.cat([ek, self.split(ca.self.key(enc))], 2)
            ev = torch.cat([ev, self.split(ca.self.value(enc))], 2)
            h = self.attend(self.split(ca.self.query(x)), ek, ev, cross)
            x = ca.output.LayerNorm(ca.output.dense(h) + x)
            x = layer.output.LayerNorm(layer.output.dense(self.act(layer.intermediate.dense(x))) + x)
            presents += [k, v, ek, ev]
        return (self.head(x), *presents)


def past_names(layers: int, prefix: str = "past_key_values") -> list[str]:
    return [f"{prefix}.{i}.{side}.{kv}" for i in range(layers) for side in ("decoder", "encoder")
            for kv in ("key", "value")]


def export_bert2bert(src: Path, work: Path, opset: int = 17) -> int:
    """Write encoder_model.onnx and decoder_model_merged.onnx for the checkpoint in `src`; return the input length
    the model takes: its position embeddings, or less where its tokenizer says so (the length it was trained at)."""
    import json

    from transformers import EncoderDecoderModel

    model = EncoderDecoderModel.from_pretrained(src, dtype=torch.float32, attn_implementation="eager").eval()
    if model.encoder.config.hidden_size != model.decoder.config.hidden_size:
        raise ValueError("encoder and decoder hidden sizes differ (enc_to_dec_proj is not exported)")
    layers = model.decoder.config.num_hidden_layers
    ids = torch.ones((2, 8), dtype=torch.long)
    with torch.no_grad():
        torch.onnx.export(_Encoder(model), (ids, ids), str(work / "encoder_model.onnx"),
                          input_names=["input_ids", "attention_mask"], output_names=["last_hidden_state"],
                          dynamic_axes={n: {0: "batch", 1: "encoder_sequence"}
                                        for n in ("input_ids", "attention_mask", "last_hidden_state")},
                          opset_version=opset, dynamo=False)
        decoder = _Decoder(model)
        hidden = torch.zeros((2, 8, model.decoder.config.hidden_size))
        past = tuple(torch.zeros((2, decoder.heads, 3 if ".decoder." in n else 8, decoder.head_dim))
                     for n in past_names(layers))
        names_in = ["encoder_attention_mask", "encoder_hidden_states", "input_ids", "use_cache_branch",
                    *past_names(layers)]
        names_out = ["logits", *past_names(layers, "present")]
        axes = {"encoder_attention_mask": {0: "batch", 1: "encoder_sequence"},
                "encoder_hidden_states": {0: "batch", 1: "encoder_sequence"},
                "input_ids": {0: "batch", 1: "decoder_sequence"}, "logits": {0: "batch", 1: "decoder_sequence"}}
        for n in past_names(layers):
            axes[n] = {0: "batch", 2: "past_decoder_sequence" if ".decoder." in n else "encoder_sequence_out"}
        for n in past_names(layers, "present"):
            axes[n] = {0: "batch", 2: "past_decoder_sequence + 1" if ".decoder." in n else "encoder_sequence_out"}
        torch.onnx.export(decoder, (ids, hidden, ids[:, :1], torch.tensor([True]), *past),
                          str(work / "decoder_model_merged.onnx"), input_names=names_in, output_names=names_out,
                          dynamic_axes=axes, opset_version=opset, dynamo=False)
    length = int(model.encoder.config.max_position_embeddings)
    tok_config = src / "tokenizer_config.json"
    if tok_config.is_file():
        length = min(length, int(json.loads(tok_config.read_text()).get("model_max_length") or length))
    return length
