"""The runtime's generation loops: identical to transformers' greedy output, batching, stopping rules."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
import transformers as tf
from conftest import CAUSAL

from plusls.exported import CancelToken, CausalLM, Embedder, GenerationConfig, RuntimeOptions, Seq2SeqLM

PROMPTS = ["def add(a, b):", "import os\nimport sys\n\nfor i in range(10):", "class Stack:\n    def push(self"]


def hf_greedy(model, ids: list[int], n: int, eos: int | None, stops: set[int] = frozenset()) -> list[int]:
    """transformers' greedy continuation, cut at EOS or at the first of our runtime's stop ids."""
    with torch.no_grad():
        out = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                             max_new_tokens=n, do_sample=False, eos_token_id=eos, pad_token_id=eos if eos is not None else 0)
    new = out[0, len(ids):].tolist()
    new = new[: new.index(eos)] if eos in new else new
    return next((new[:i] for i, t in enumerate(new) if t in stops), new)


@pytest.mark.parametrize("arch", CAUSAL)
def test_greedy_matches_transformers_generate(arch, checkpoints, exported):
    hf = tf.AutoModelForCausalLM.from_pretrained(checkpoints[arch]).eval()
    lm = CausalLM(exported[arch])
    for prompt in PROMPTS:
        ids = lm.encode(prompt)
        ours = lm.generate_ids([ids], GenerationConfig(max_new_tokens=24))[0]
        assert ours.token_ids == hf_greedy(hf, ids, 24, lm.manifest.token_id("eos"), set(lm.stop_ids))


def test_seq2seq_greedy_matches_transformers_generate(checkpoints, exported):
    hf = tf.AutoModelForSeq2SeqLM.from_pretrained(checkpoints["t5"]).eval()
    lm = Seq2SeqLM(exported["t5"])
    for text in PROMPTS:
        ids, _ = lm.encode_batch([text])
        with torch.no_grad():
            ref = hf.generate(torch.from_numpy(ids), max_new_tokens=16, do_sample=False)[0, 1:].tolist()
        ref = ref[: ref.index(1)] if 1 in ref else ref
        assert lm.generate(text, GenerationConfig(max_new_tokens=16))[0].token_ids == ref


@pytest.mark.parametrize("arch", CAUSAL)
def test_batch_equals_one_by_one(arch, exported):
    lm = CausalLM(exported[arch])
    config = GenerationConfig(max_new_tokens=16)
    batched = lm.generate(PROMPTS, config)
    assert [g.token_ids for g in batched] == [lm.generate(p, config)[0].token_ids for p in PROMPTS]
    assert [g.prompt_tokens for g in batched] == [len(lm.encode(p)) for p in PROMPTS]


def test_seq2seq_and_embedding_batches_equal_one_by_one(exported):
    lm = Seq2SeqLM(exported["t5"])
    config = GenerationConfig(max_new_tokens=12)
    assert [g.token_ids for g in lm.generate(PROMPTS, config)] == [lm.generate(p, config)[0].token_ids for p in PROMPTS]
    for arch in ("bert", "codet5p-embedding"):
        emb = Embedder(exported[arch])
        together = emb.embed(PROMPTS, batch_size=2)
        alone = np.concatenate([emb.embed([p]) for p in PROMPTS])
        assert np.abs(together - alone).max() < 1e-5


def test_embedding_truncates_long_inputs(exported):
    emb = Embedder(exported["bert"])
    long = "return the sum of two numbers " * 200
    vec = emb.embed([long, "x"])
    assert vec.shape == (2, emb.dim) and np.isfinite(vec).all()
    assert np.allclose(emb.embed([long], max_length=8), emb.embed([" ".join(long.split()[:40])], max_length=8), atol=1e-5)


def test_io_binding_gives_the_same_tokens(exported):
    plain = CausalLM(exported["llama"])
    bound = CausalLM(exported["llama"], RuntimeOptions(io_binding=True))
    config = GenerationConfig(max_new_tokens=20)
    assert [g.token_ids for g in bound.generate(PROMPTS, config)] == [g.token_ids for g in plain.generate(PROMPTS, config)]


def test_stop_sequence_cuts_the_text(exported):
    lm = CausalLM(exported["gpt2"])
    free = lm.generate(PROMPTS[0], GenerationConfig(max_new_tokens=30, stop_on_eos=False))[0]
    stop = free.text[len(free.text) // 2 : len(free.text) // 2 + 2]
    assert stop.strip() or len(stop) == 2
    out = lm.generate(PROMPTS[0], GenerationConfig(max_new_tokens=30, stop=(stop,), stop_on_eos=False))[0]
    assert out.finish_reason == "stop"
    assert out.text == free.text[: free.text.find(stop)]
    assert stop not in out.text


def test_max_new_tokens_is_honoured(exported):
    lm = CausalLM(exported["codegen"])
    out = lm.generate(PROMPTS, GenerationConfig(max_new_tokens=5, stop_on_eos=False))
    assert all(len(g.token_ids) == 5 and g.finish_reason == "length" for g in out)


def test_sampling_is_seeded_and_respects_top_p(exported):
    lm = CausalLM(exported["qwen2"])
    cfg = GenerationConfig(max_new_tokens=12, temperature=1.0, top_p=0.9, seed=7, stop_on_eos=False)
    a, b = lm.generate(PROMPTS[0], cfg)[0], lm.generate(PROMPTS[0], cfg)[0]
    assert a.token_ids == b.token_ids
    near_greedy = GenerationConfig(max_new_tokens=12, temperature=1.0, top_p=1e-9, seed=3, stop_on_eos=False)
    greedy = GenerationConfig(max_new_tokens=12, stop_on_eos=False)
    assert lm.generate(PROMPTS[0], near_greedy)[0].token_ids == lm.generate(PROMPTS[0], greedy)[0].token_ids


class CancelAfter(CancelToken):
    """Reports cancelled from the n-th check on: shows generation checks between every step."""

    def __init__(self, n: int):
        super().__init__()
        self.checks, self.n = 0, n

    @property
    def cancelled(self) -> bool:
        self.checks += 1
        return self.checks > self.n


@pytest.mark.parametrize("model", ["gpt2", "llama", "t5"])
def test_cancellation_stops_between_steps(model, exported):
    lm = Seq2SeqLM(exported[model]) if model == "t5" else CausalLM(exported[model])
    cfg = GenerationConfig(max_new_tokens=50, stop_on_eos=False)
    out = lm.generate(PROMPTS[:2], cfg, cancel=CancelAfter(4))
    assert all(g.finish_reason == "cancelled" for g in out)
    if model == "llama":  # the fused graph runs prompts of different lengths one after the other: the first one
        assert [len(g.token_ids) for g in out] == [3, 0]  # had the 3 tokens after the check before its prompt
    else:
        assert all(len(g.token_ids) == 4 for g in out)  # one check before the prompt, then one per new token
    token = CancelToken()
    token.cancel()
    assert lm.generate(PROMPTS[0], cfg, cancel=token)[0].token_ids == []


def slow_model(directory, step_s: float) -> CausalLM:
    """The real model, each decoder call made to take at least step_s longer."""
    lm = CausalLM(directory)
    forward = lm.forward

    def slow(*args, **kwargs):
        threading.Event().wait(step_s)
        return forward(*args, **kwargs)

    lm.forward = slow
    return lm


def test_cancel_from_another_thread(exported):
    lm = slow_model(exported["llama"], 0.01)
    token = CancelToken()
    threading.Timer(0.1, token.cancel).start()
    out = lm.generate(PROMPTS[0], GenerationConfig(max_new_tokens=1000, stop_on_eos=False), cancel=token)[0]
    assert out.finish_reason == "cancelled" and 0 < len(out.token_ids) < 1000


def test_deadline_ends_generation(exported):
    lm = slow_model(exported["llama"], 0.02)
    out = lm.generate(PROMPTS[0], GenerationConfig(max_new_tokens=1000, deadline_s=0.2, stop_on_eos=False))[0]
    assert out.finish_reason == "deadline"
    assert 1 <= len(out.token_ids) <= 11 and out.total_s < 1.0


def test_empty_prompt_starts_from_the_document_start_token(exported):
    lm = CausalLM(exported["llama"])
    config = GenerationConfig(max_new_tokens=6, stop_on_eos=False)
    out = lm.generate(["", "def add(a, b):"], config)
    assert len(out[0].token_ids) == 6 and out[0].prompt_tokens == 0
    assert out[0].token_ids == lm.generate_ids([[lm.manifest.token_id("bos")]], config)[0].token_ids
    assert out[1].token_ids == lm.generate("def add(a, b):", config)[0].token_ids


# --- repetition control (no_repeat_ngram_size, repetition_penalty) ----------------------------------------------------

def test_banned_ngram_tokens():
    from plusls.exported.generation import banned_ngram_tokens

    assert banned_ngram_tokens([5, 6, 7, 5], 2) == {6}  # "5 6" was said: after 5, 6 is banned
    assert banned_ngram_tokens([5, 6, 7, 5, 6], 3) == {7}
    assert banned_ngram_tokens([5, 6, 7], 2) == set()  # 7 never came before
    assert banned_ngram_tokens([5, 6, 7], 1) == {5, 6, 7}
    assert banned_ngram_tokens([5], 3) == set() and banned_ngram_tokens([5, 5], 0) == set()


def test_adjust_logits_changes_only_repeats():
    from plusls.exported.generation import adjust_logits

    logits = np.array([[0.0, 1.0, 2.0, -1.0, 3.0]] * 2, np.float32)
    on = GenerationConfig(no_repeat_ngram_size=2, repetition_penalty=2.0)
    assert adjust_logits(logits, [[], []], on) is logits  # nothing emitted yet: nothing to change
    assert adjust_logits(logits, [[4, 2]], GenerationConfig()) is logits  # settings off: a no-op
    out = adjust_logits(logits, [[4, 2, 4], [1, 3]], on)
    assert out[0, 2] == -np.inf  # "4 2" again is banned
    assert out[0, 4] == 1.5 and out[1, 1] == 0.5 and out[1, 3] == -2.0  # penalised: positive / 2, negative * 2
    assert out[0, 0] == out[1, 0] == 0.0 and np.isfinite(out[1]).all()
    assert logits[0, 2] == 2.0  # the input is not modified


def _repeats(ids: list[int], n: int) -> bool:
    grams = [tuple(ids[i : i + n]) for i in range(len(ids) - n + 1)]
    return len(set(grams)) < len(grams)


@pytest.mark.parametrize("kind", ["seq2seq", "causal-lm"])
def test_no_repeat_ngram_changes_output_only_when_a_repeat_would_occur(kind, exported):
    lm = Seq2SeqLM(exported["t5"]) if kind == "seq2seq" else CausalLM(exported["llama"])
    plain = [g.token_ids for g in lm.generate(PROMPTS, GenerationConfig(max_new_tokens=24, stop_on_eos=False))]
    assert any(_repeats(ids, 2) for ids in plain)  # the tiny random models loop: the setting has work to do
    guarded = [g.token_ids for g in lm.generate(PROMPTS, GenerationConfig(max_new_tokens=24, stop_on_eos=False,
                                                                           no_repeat_ngram_size=2))]
    for before, after in zip(plain, guarded):
        assert not _repeats(after, 2)
        if not _repeats(before, 2):
            assert after == before  # no repeat would occur: a no-op
        else:  # identical up to the token that would have completed the first repeated pair
            first = next(i for i in range(1, len(before)) if _repeats(before[: i + 1], 2))
            assert after[:first] == before[:first] and after[first] != before[first]


def test_seq2seq_repetition_settings_match_transformers(checkpoints, exported):
    hf = tf.AutoModelForSeq2SeqLM.from_pretrained(checkpoints["t5"]).eval()
    lm = Seq2SeqLM(exported["t5"])
    for settings in ({"no_repeat_ngram_size": 2}, {"no_repeat_ngram_size": 3}):
        for text in PROMPTS:
            ids, _ = lm.encode_batch([text])
            with torch.no_grad():
                ref = hf.generate(torch.from_numpy(ids), max_new_tokens=16, do_sample=False, **settings)[0, 1:].tolist()
            ref = ref[: ref.index(1)] if 1 in ref else ref
            assert lm.generate(text, GenerationConfig(max_new_tokens=16, **settings))[0].token_ids == ref


def test_seq2seq_uses_the_manifest_decoding_settings(exported, tmp_path):
    import json
    import shutil

    directory = tmp_path / "t5"
    shutil.copytree(exported["t5"], directory)
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["config"]["generation"] = {"no_repeat_ngram_size": 2}
    (directory / "manifest.json").write_text(json.dumps(manifest))
    plain, guarded = Seq2SeqLM(exported["t5"]), Seq2SeqLM(directory)
    config = GenerationConfig(max_new_tokens=24, stop_on_eos=False)
    explicit = GenerationConfig(max_new_tokens=24, stop_on_eos=False, no_repeat_ngram_size=2)
    off = GenerationConfig(max_new_tokens=24, stop_on_eos=False, no_repeat_ngram_size=0)
    for text in PROMPTS:
        assert guarded.generate(text, config)[0].token_ids == plain.generate(text, explicit)[0].token_ids
        assert guarded.generate(text, off)[0].token_ids == plain.generate(text, config)[0].token_ids


def test_copy_bias_favours_the_input_tokens(exported):
    from plusls.exported.generation import adjust_logits

    logits = np.zeros((2, 5), np.float32)
    out = adjust_logits(logits, [[], []], GenerationConfig(copy_bias=1.5), [np.array([1, 3]), np.array([], np.int64)])
    assert out[0].tolist() == [0.0, 1.5, 0.0, 1.5, 0.0] and not out[1].any() and not logits.any()
    assert adjust_logits(logits, [[], []], GenerationConfig(copy_bias=0.0), [np.array([1])]) is logits
    lm = Seq2SeqLM(exported["t5"])
    text = PROMPTS[0]
    ids, _ = lm.encode_batch([text])
    source = set(ids[0].tolist()) - lm.special_ids
    plain = lm.generate(text, GenerationConfig(max_new_tokens=12, stop_on_eos=False))[0].token_ids
    copied = lm.generate(text, GenerationConfig(max_new_tokens=12, stop_on_eos=False, copy_bias=100.0))[0].token_ids
    assert all(t in source for t in copied) and plain != copied  # a large bonus: only the input's tokens come out
    off = GenerationConfig(max_new_tokens=12, stop_on_eos=False, copy_bias=0.0)
    assert lm.generate(text, off)[0].token_ids == plain


def test_every_control_token_ends_a_generation_and_none_reaches_the_text(exported):
    """The one stop policy (exported.special_tokens), on a tiny Qwen2 with Qwen2.5-Coder's control tokens: its own
    FIM and repository tokens are found and nothing is added; the manifest's stop set holds every control token; a
    row ends at any of them (<|file_sep|> included), and the text never carries one."""
    from tiny_models import QWEN_SPECIALS

    from plusls.exported.generation import RowDecoder
    from plusls.exported.special_tokens import stop_ids

    lm = CausalLM(exported["qwen2"])
    tok = lm.tokenizer
    m = lm.manifest
    assert [m.fim[p]["token"] for p in ("prefix", "suffix", "middle")] == ["<|fim_prefix|>", "<|fim_suffix|>",
                                                                           "<|fim_middle|>"]
    assert m.special_tokens["repo"]["file_sep"]["id"] == tok.token_to_id("<|file_sep|>")
    assert {t["token"] for t in m.special_tokens["stop"]} == set(QWEN_SPECIALS)
    # A manifest written before the stop set was recorded gets the same set from its tokenizer.
    legacy = {k: v for k, v in m.special_tokens.items() if k != "stop"}
    assert stop_ids(legacy, tok) == lm.stop_ids
    word = tok.encode("return a + b").ids
    for control in sorted(lm.stop_ids):
        row = RowDecoder(tok, 0, GenerationConfig(max_new_tokens=20, stop=("\n\n",)), lm.stop_ids)
        for t in [*word, control, *word]:
            row.push(t, 0.0)
        out = row.result(0.0)
        assert out.finish_reason == "eos" and out.token_ids == word
        assert out.text == tok.decode(word) and "<|" not in out.text
