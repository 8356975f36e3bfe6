"""Tiny random checkpoints of every architecture plusls exports, built locally (no download)."""
from __future__ import annotations

import json
from pathlib import Path

CORPUS = [
    "def add(a, b):\n    return a + b\n",
    "def read_file(path):\n    with open(path) as f:\n        return f.read()\n",
    "class Stack:\n    def push(self, item):\n        self.items.append(item)\n",
    "for i in range(10):\n    print(i)\n",
    "import os\nimport sys\n\nprint(sys.argv)\n",
    "how to sort a list in python",
    "return the sum of two numbers",
] * 20
FIM = ["<fim_prefix>", "<fim_suffix>", "<fim_middle>"]
# Qwen2.5-Coder's control tokens, in its order (the tiny qwen2 model has them, as the real one does).
QWEN_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>",
                 "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>"]


def bpe_tokenizer(specials: list[str], vocab_size: int = 320, corpus: list[str] | None = None, **named):
    """A byte-level BPE tokenizer trained on CORPUS, wrapped as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(corpus or CORPUS, trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=tok, **named)


def wordpiece_tokenizer():
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(CORPUS, trainers.WordPieceTrainer(vocab_size=200, special_tokens=specials))
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]", model_max_length=64)


def causal_tokenizer(fim: bool = False, corpus: list[str] | None = None, qwen: bool = False):
    specials = QWEN_SPECIALS if qwen else ["<|endoftext|>", *(FIM if fim else [])]
    return bpe_tokenizer(specials, corpus=corpus, bos_token="<|endoftext|>", eos_token="<|endoftext|>", pad_token="<|endoftext|>")


def build(arch: str, out: Path) -> Path:
    """Write a tiny random checkpoint of `arch` to `out` (config, safetensors, tokenizer) and return out."""
    import torch
    import transformers as tf

    torch.manual_seed(0)
    out.mkdir(parents=True, exist_ok=True)
    if arch in ("gpt2", "codegen", "llama", "qwen2"):
        tok = causal_tokenizer(fim=arch == "gpt2", qwen=arch == "qwen2")
        v = len(tok)
        config = {
            "gpt2": lambda: tf.GPT2Config(vocab_size=v, n_embd=32, n_layer=2, n_head=4, n_positions=128,
                                          bos_token_id=0, eos_token_id=0),
            "codegen": lambda: tf.CodeGenConfig(vocab_size=v, n_embd=32, n_layer=2, n_head=4, n_positions=128,
                                                rotary_dim=4, bos_token_id=0, eos_token_id=0),
            # Llama and Qwen2: heads of 16, as the fused graph needs (export/fused.py)
            "llama": lambda: tf.LlamaConfig(vocab_size=v, hidden_size=64, intermediate_size=64, num_hidden_layers=2,
                                            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                                            bos_token_id=0, eos_token_id=0, pad_token_id=0),
            "qwen2": lambda: tf.Qwen2Config(vocab_size=v, hidden_size=64, intermediate_size=64, num_hidden_layers=2,
                                            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                                            bos_token_id=0, eos_token_id=0, use_sliding_window=False),
        }[arch]()
        tf.AutoModelForCausalLM.from_config(config).save_pretrained(out)
        tok.save_pretrained(out)
    elif arch == "t5":
        tok = bpe_tokenizer(["<pad>", "</s>", "<unk>"], pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
        from tokenizers import processors

        tok.backend_tokenizer.post_processor = processors.TemplateProcessing(
            single="$A </s>", special_tokens=[("</s>", 1)])
        config = tf.T5Config(vocab_size=len(tok), d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
                             decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
        tf.T5ForConditionalGeneration(config).save_pretrained(out)
        tok.save_pretrained(out)
    elif arch == "bert":
        tok = wordpiece_tokenizer()
        config = tf.BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                               intermediate_size=64, max_position_embeddings=64)
        tf.BertModel(config).save_pretrained(out)
        tok.save_pretrained(out)
        (out / "modules.json").write_text(json.dumps([
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]))
        (out / "1_Pooling").mkdir(exist_ok=True)
        (out / "1_Pooling" / "config.json").write_text(json.dumps(
            {"word_embedding_dimension": 32, "pooling_mode_mean_tokens": True, "pooling_mode_cls_token": False}))
        (out / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 48}))
    elif arch == "codet5p-embedding":
        from safetensors.torch import save_file

        from plusls.exported.export.embedding_modules import CodeT5pEmbedder

        tok = bpe_tokenizer(["<pad>", "</s>", "<unk>", "<s>"], pad_token="<pad>", eos_token="</s>",
                            unk_token="<unk>", bos_token="<s>")
        cfg = {"model_type": "codet5p_embedding", "architectures": ["CodeT5pEmbeddingModel"],
               "auto_map": {"AutoModel": "modeling_codet5p_embedding.CodeT5pEmbeddingModel"},
               "vocab_size": len(tok), "d_model": 32, "d_kv": 8, "d_ff": 64, "num_layers": 2, "num_heads": 4,
               "embed_dim": 16, "pad_token_id": 0, "eos_token_id": 1}
        t5 = tf.T5Config(**{k: v for k, v in cfg.items() if k not in ("model_type", "architectures", "auto_map")})
        t5.embed_dim = 16
        model = CodeT5pEmbedder(t5)
        state = {k: v.contiguous() for k, v in model.state_dict().items() if k != "encoder.embed_tokens.weight"}
        save_file(state, str(out / "model.safetensors"))
        (out / "config.json").write_text(json.dumps(cfg))
        tok.save_pretrained(out)
    else:
        raise ValueError(arch)
    return out


def memorized_causal_lm(out: Path, texts: list[str], steps: int = 300, fim: bool = False) -> Path:
    """A tiny GPT-2 trained until it recites `texts`: completions the tests can predict. Trained left to right only;
    `fim`: its tokenizer declares FIM tokens all the same (a FIM prompt it never learned to read)."""
    import torch
    import transformers as tf

    torch.manual_seed(0)
    torch.set_num_threads(1)  # a tiny model: more threads only wait on each other
    out.mkdir(parents=True, exist_ok=True)
    tok = causal_tokenizer(fim=fim, corpus=CORPUS + texts * 5)
    model = tf.GPT2LMHeadModel(tf.GPT2Config(vocab_size=len(tok), n_embd=64, n_layer=2, n_head=4, n_positions=512,
                                             bos_token_id=0, eos_token_id=0))
    # Each text whole, from its start: the positions a prompt from the top of the file has.
    batch = [torch.tensor([tok(t + "<|endoftext|>")["input_ids"]]) for t in texts]
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for step in range(steps):
        seq = batch[step % len(batch)]
        loss = model(seq, labels=seq).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def build_gguf(checkpoint: Path, out: Path, tied: bool = False) -> Path:
    """Write the tiny Llama/Qwen2 `checkpoint` as llama.cpp's converter would: its tensors (2-D ones in Q8_0, the
    Llama q/k rows interleaved per head), its config and byte-level BPE tokenizer as metadata. `tied`: no
    output.weight, the token embedding serves as lm_head."""
    import gguf
    import numpy as np
    import transformers as tf

    from plusls.exported.export.gguf_checkpoint import LAYER, MODEL

    # Hugging Face -> llama.cpp names: the reader's table turned around (transformers, reading the file written
    # here, is the independent check that the table is llama.cpp's).
    model_names, layer_names = {v: k for k, v in MODEL.items()}, {v: k for k, v in LAYER.items()}

    model = tf.AutoModelForCausalLM.from_pretrained(checkpoint)
    cfg = model.config
    arch = cfg.model_type
    writer = gguf.GGUFWriter(str(out), arch)
    writer.add_block_count(cfg.num_hidden_layers)
    writer.add_context_length(cfg.max_position_embeddings)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_head_count(cfg.num_attention_heads)
    writer.add_head_count_kv(cfg.num_key_value_heads)
    writer.add_rope_freq_base(cfg.rope_theta)
    writer.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    tok = json.loads((checkpoint / "tokenizer.json").read_text())
    vocab = tok["model"]["vocab"] | {t["content"]: t["id"] for t in tok["added_tokens"]}
    tokens = sorted(vocab, key=vocab.get)
    special = {t["content"] for t in tok["added_tokens"] if t["special"]}
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("qwen2")
    writer.add_token_list(tokens)
    writer.add_token_types([gguf.TokenType.CONTROL if t in special else gguf.TokenType.NORMAL for t in tokens])
    writer.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"]])
    writer.add_bos_token_id(cfg.bos_token_id)
    writer.add_eos_token_id(cfg.eos_token_id)
    for name, tensor in model.state_dict().items():
        if tied and name == "lm_head.weight":
            continue
        data = tensor.float().numpy()
        if name in model_names:
            name = model_names[name]
        else:
            _, _, layer, rest = name.split(".", 3)
            if arch == "llama" and rest in ("self_attn.q_proj.weight", "self_attn.k_proj.weight"):
                heads = cfg.num_attention_heads if "q_proj" in rest else cfg.num_key_value_heads
                data = data.reshape(heads, 2, data.shape[0] // heads // 2, -1).swapaxes(1, 2).reshape(data.shape)
            name = f"blk.{layer}.{layer_names[rest]}"
        if data.ndim == 2:
            writer.add_tensor(name, gguf.quants.quantize(data, gguf.GGMLQuantizationType.Q8_0),
                              raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        else:
            writer.add_tensor(name, np.ascontiguousarray(data))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out
