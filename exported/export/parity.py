"""Parity at export time: the ONNX model, run through plusls's own runtime, against PyTorch on sample inputs."""
from __future__ import annotations

import numpy as np
import torch


def sample_ids(vocab: int, rows: int = 2, length: int = 12, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(min(10, vocab - 1), vocab, size=(rows, length), dtype=np.int64)


def top1_agreement(reference: np.ndarray, candidate: np.ndarray) -> float:
    return float((reference.argmax(-1) == candidate.argmax(-1)).mean())


def causal_logits(hf_model, runtime, vocab: int) -> tuple[np.ndarray, np.ndarray]:
    """(torch, onnx) logits at every real position of a left-padded prefill followed by one cached step (a fused
    graph takes no left padding: its rows are whole). The rows are real code where the tokenizer makes 12 tokens of
    it (random ids give near-tied logits, which make int8 top-1 agreement a coin toss), else random ids."""
    ids = sample_ids(vocab)
    for row, text in zip(ids, (EMBED_SAMPLES[0], EMBED_SAMPLES[2])):
        code = runtime.encode(text)[:12]
        if len(code) == 12:
            row[:] = code
    mask = np.ones_like(ids)
    if not runtime.fused:
        mask[1, :3] = 0  # the second row is left-padded
    pos = np.maximum(mask.cumsum(1) - 1, 0)
    nxt = sample_ids(vocab, length=1, seed=1)
    mask2 = np.concatenate([mask, np.ones((2, 1), np.int64)], 1)
    pos2 = pos[:, -1:] + 1
    with torch.no_grad():
        out = hf_model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                       position_ids=torch.from_numpy(pos), use_cache=True)
        out2 = hf_model(input_ids=torch.from_numpy(nxt), attention_mask=torch.from_numpy(mask2),
                        position_ids=torch.from_numpy(pos2), past_key_values=out.past_key_values, use_cache=True)
    logits, past = runtime.forward(ids, mask, pos, runtime.empty_past(2))
    logits2, _ = runtime.forward(nxt, mask2, pos2, past)
    real = mask.astype(bool)
    ref = np.concatenate([out.logits.numpy()[real], out2.logits.numpy()[:, -1]])
    got = np.concatenate([logits[real], logits2[:, -1]])
    return ref, got


def seq2seq_logits(hf_model, runtime, vocab: int, steps: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """(torch, onnx) decoder logits, teacher-forced for a few steps, the ONNX side stepping with its past."""
    ids = sample_ids(vocab)
    mask = np.ones_like(ids)
    mask[1, -4:] = 0  # the second row is right-padded, as the encoder sees it
    dec = np.concatenate([np.full((2, 1), runtime.start_id), sample_ids(vocab, length=steps - 1, seed=2)], 1)
    with torch.no_grad():
        ref = hf_model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                       decoder_input_ids=torch.from_numpy(dec)).logits.numpy()
    hidden = runtime.encoder.run(None, {"input_ids": ids, "attention_mask": mask})[0]
    feed = {"encoder_attention_mask": mask, "encoder_hidden_states": hidden, "use_cache_branch": np.array([False])}
    for name in runtime.past_names:
        feed[name] = np.zeros((2, runtime.heads, 0, runtime.head_dim), np.float32)
    got = []
    for t in range(steps):
        feed["input_ids"] = dec[:, t : t + 1]
        outs = runtime.decoder.run(["logits", *runtime.present_names], feed)
        got.append(outs[0][:, -1])
        for name, value in zip(runtime.past_names, outs[1:]):
            if ".decoder." in name or t == 0:
                feed[name] = value
        feed["use_cache_branch"] = np.array([True])
    return ref.reshape(-1, ref.shape[-1]), np.stack(got, 1).reshape(-1, ref.shape[-1])


EMBED_SAMPLES = [
    "def read_file(path):\n    with open(path) as f:\n        return f.read()",
    "how to sort a list in python",
    "class Stack:\n    def push(self, x):\n        self.items.append(x)",
    "x",
]


def embedding_vectors(torch_model, runtime) -> tuple[np.ndarray, np.ndarray]:
    got = runtime.embed(EMBED_SAMPLES)
    ref = []
    for text in EMBED_SAMPLES:  # one at a time: no padding on the reference side
        ids = np.array([runtime.tokenizer.encode(text).ids[: runtime.max_length]])
        args = [torch.from_numpy(ids), torch.ones(ids.shape, dtype=torch.long)]
        if "token_type_ids" in runtime.input_names:
            args.append(torch.zeros(ids.shape, dtype=torch.long))
        with torch.no_grad():
            ref.append(torch_model(*args).numpy()[0])
    return np.stack(ref), got


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


MATCH_TEXTS = ["read a file and return its contents", "sort a list in python", "push an item on a stack", "x"]


def matching_logits(torch_model, runtime) -> tuple[np.ndarray, np.ndarray]:
    """(torch, onnx) match logits of every sample text against every sample code; the ONNX side batched (padded),
    the reference one pair at a time."""
    got = np.concatenate([runtime.score(t, EMBED_SAMPLES) for t in MATCH_TEXTS])
    ref = []
    for text in MATCH_TEXTS:
        for ids, types in runtime.pairs(text, EMBED_SAMPLES):
            ids_t = torch.tensor([ids])
            with torch.no_grad():
                ref.append(float(torch_model(ids_t, torch.ones_like(ids_t), torch.tensor([types]))[0]))
    return np.array(ref, np.float32), got


def pair_order_agreement(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Of all pairs of samples, the share the candidate scores put in the same order as the reference's."""
    i, j = np.triu_indices(len(reference), 1)
    return float((np.sign(reference[i] - reference[j]) == np.sign(candidate[i] - candidate[j])).mean())
