"""Prefix reuse and prompt-lookup drafts must give exactly what plain greedy generation gives, with less work."""
from __future__ import annotations

import pytest

from plusls.completion.prefix_reuse import PrefixReuseLM
from plusls.exported.causal_lm import CausalLM
from plusls.exported.generation import CancelToken, GenerationConfig

CODE = "def add(a, b):\n    return a + b\n\ndef sub(a, b):\n    return a - b\n\ndef mul(a, b):\n    return a"


@pytest.mark.parametrize("arch", ["gpt2", "llama", "qwen2", "codegen"])
def test_reuse_and_drafts_match_plain_greedy(exported, arch):
    lm = CausalLM(exported[arch])
    reuse = PrefixReuseLM(lm)
    config = GenerationConfig(max_new_tokens=24, stop_on_eos=False)
    typed = [CODE[:n] for n in range(len(CODE) - 12, len(CODE) + 1, 3)]
    for text in typed:  # a user typing: each prompt extends the previous one
        ids = lm.encode(text)
        plain = lm.generate_ids([ids], config)[0]
        got, stats = reuse.generate("doc", ids, config)
        assert got.token_ids == plain.token_ids, text
    assert stats.reused_tokens >= len(lm.encode(typed[-2])) - 3  # only the end of the prompt ran again


@pytest.mark.parametrize("arch", ["gpt2", "qwen2"])
def test_repetition_settings_decode_as_plain_generation_does(exported, arch):
    lm = CausalLM(exported[arch])
    ids = lm.encode(CODE)
    free = GenerationConfig(max_new_tokens=40, stop_on_eos=False)
    banned = GenerationConfig(max_new_tokens=40, stop_on_eos=False, no_repeat_ngram_size=2)
    tokens = PrefixReuseLM(lm).generate("doc", ids, free)[0].token_ids
    pairs = list(zip(tokens, tokens[1:]))
    assert len(set(pairs)) < len(pairs)  # a tiny random model repeats itself...
    got = PrefixReuseLM(lm).generate("doc", ids, banned)[0].token_ids
    assert got == lm.generate_ids([ids], banned)[0].token_ids
    pairs = list(zip(got, got[1:]))
    assert len(set(pairs)) == len(pairs)  # ...and not with the setting


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_a_cache_written_in_place_grows_and_rewinds_exactly(exported, arch, monkeypatch):
    """Fused graphs keep one buffer per layer that each step writes into: it must grow past its first size, and
    an edit above the cursor (a shorter common prefix) must overwrite what follows, never read stale entries."""
    from plusls.exported import kv_buffers

    monkeypatch.setattr(kv_buffers, "MIN_CAPACITY", 4)
    lm = CausalLM(exported[arch])
    assert isinstance(lm.new_cache(), kv_buffers.KVBuffers)
    reuse = PrefixReuseLM(lm)
    config = GenerationConfig(max_new_tokens=12, stop_on_eos=False)
    edited = CODE.replace("return a - b", "return b - a")
    for text in (CODE[:40], CODE, edited, edited + "\n", CODE[:20]):
        ids = lm.encode(text)
        got, _ = reuse.generate("doc", ids, config)
        assert got.token_ids == lm.generate_ids([ids], config)[0].token_ids, text


def test_drafts_cut_forward_passes(memorized):
    """A model that recites a file repeats what the prompt holds: prompt-lookup drafts are accepted and save
    forward passes, and the output is still exactly plain greedy."""
    from fixture_repo import FILES

    lm = CausalLM(memorized)
    config = GenerationConfig(max_new_tokens=32, stop_on_eos=False)
    text = FILES["src/mathutil.py"]
    ids = lm.encode(text + "\n" + text[: len(text) // 3])  # the file once, then its start again
    plain, plain_stats = PrefixReuseLM(lm, speculative=False).generate("a", ids, config)
    fast, fast_stats = PrefixReuseLM(lm).generate("a", ids, config)
    assert fast.token_ids == plain.token_ids
    assert fast_stats.draft_tokens_accepted > 0
    assert fast_stats.forward_passes < plain_stats.forward_passes


def test_other_documents_share_nothing_unless_they_start_alike_and_cancel_stops(exported):
    lm = CausalLM(exported["gpt2"])
    reuse = PrefixReuseLM(lm, max_documents=2)
    config = GenerationConfig(max_new_tokens=8)
    reuse.generate("a", lm.encode(CODE), config)
    _, stats = reuse.generate("b", lm.encode("x = 1\n" * 8), config)
    assert stats.reused_tokens == 0
    token = CancelToken()
    token.cancel()
    got, _ = reuse.generate("b", lm.encode(CODE + "x"), config, token)
    assert got.finish_reason == "cancelled" and got.token_ids == []


@pytest.mark.parametrize("arch", ["gpt2", "qwen2"])  # arrays, and buffers written in place
def test_a_prompt_that_starts_as_another_keys_copies_its_cache_and_generates_the_same(exported, arch):
    """A document's prefix-only rival starts as its FIM prompt does: those key/values are copied, not run, the
    output is exactly plain greedy's, and the cache it came from is left as it was."""
    lm = CausalLM(exported[arch])
    reuse = PrefixReuseLM(lm)
    config = GenerationConfig(max_new_tokens=12, stop_on_eos=False)
    ids = lm.encode(CODE)
    reuse.generate("fim", ids, config)
    rival = ids[:30] + lm.encode(" zz")
    got, stats = reuse.generate("rival", rival, config)
    assert got.token_ids == lm.generate_ids([rival], config)[0].token_ids
    assert stats.copied_tokens == stats.reused_tokens == 30
    again, stats = reuse.generate("fim", ids + lm.encode("x"), config)
    assert again.token_ids == lm.generate_ids([ids + lm.encode("x")], config)[0].token_ids
    assert stats.copied_tokens == 0 and stats.reused_tokens >= len(ids) - 1


@pytest.mark.parametrize("arch", ["gpt2", "qwen2"])
def test_token_healing_allows_exactly_the_tokens_that_fit_what_the_user_typed(exported, arch):
    """The first token after a healed prompt must start with the typed text, or be a start of it; the generated
    text then begins with that text."""
    import numpy as np

    lm = CausalLM(exported[arch])
    reuse = PrefixReuseLM(lm)
    strings = reuse.healing.strings()
    logits = np.zeros((1, lm.tokenizer.get_vocab_size()), np.float32)
    for need in (" re", "    ", "\n    ", "x", "def", " nothing_starts_like_this"):
        allowed = np.isfinite(reuse.healing.constrain(logits, need)[0])
        expected = np.array([bool(s) and (s.startswith(need) or need.startswith(s)) for s in strings])
        assert (allowed == expected).all() and allowed.any(), need
    ids = lm.encode("def add(a, b):\n")
    got, _ = reuse.generate("doc", ids, GenerationConfig(max_new_tokens=8, stop_on_eos=False), starts_with="    ret")
    assert got.text.startswith("    ret")


@pytest.mark.parametrize("draft_arch", ["codegen", "llama"])
def test_a_draft_model_changes_nothing_but_the_number_of_passes(exported, draft_arch):
    """A second model with the same tokenizer drafts where prompt lookup finds nothing (the 0.5B for the 1.5B on a
    GPU): the text is token for token the completion model's own greedy text; a draft model that agrees (here: the
    same model) saves forward passes of the big one."""
    lm = CausalLM(exported["llama"])
    drafter = PrefixReuseLM(CausalLM(exported[draft_arch]), speculative=False)
    plain = PrefixReuseLM(lm, speculative=False)
    drafted = PrefixReuseLM(lm, speculative=False, drafter=drafter)
    config = GenerationConfig(max_new_tokens=24, stop_on_eos=False)
    for text in ("def add(a, b):", "class Stack:\n    def push(self, x):"):
        ids = lm.encode(text)
        want, plain_stats = plain.generate(text, ids, config)
        got, stats = drafted.generate(text, ids, config)
        assert got.token_ids == want.token_ids == lm.generate_ids([ids], config)[0].token_ids
        if draft_arch == "llama":
            assert stats.draft_tokens_accepted > 10 and stats.forward_passes < plain_stats.forward_passes / 2


def test_a_draft_model_with_another_tokenizer_is_refused(exported):
    with pytest.raises(ValueError, match="tokenizer differs"):
        PrefixReuseLM(CausalLM(exported["llama"]), drafter=PrefixReuseLM(CausalLM(exported["qwen2"])))
