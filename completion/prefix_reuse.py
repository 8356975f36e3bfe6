"""Greedy/sampled generation that keeps each document's key/value cache and reuses its longest common token prefix.

On a CPU the prompt's prefill dominates: a keystroke changes the prompt's last few tokens, so only those run through
the model. A prompt that starts as another key's cached one does (a document's FIM prompt and its prefix-only
rival) copies those key/values instead of running them. Greedy decoding also proposes drafts by prompt lookup
(completions often copy text already in the file) and verifies up to DRAFT tokens in one forward pass.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Hashable, Sequence

import numpy as np

from plusls.common.lru import LRU
from plusls.exported.causal_lm import Cache, CausalLM, common_prefix, first_positions
from plusls.exported.generation import (CancelToken, Generation, GenerationConfig, RowDecoder, StopWatch, adjust_logits,
                                        choose_tokens, resolve_config, token_logprobs)
from plusls.exported.kv_buffers import KVBuffers

from .healing import TokenHealing

PREFILL_CHUNK = 64  # prompt tokens per forward pass: bounds the logits buffer and lets a cancel land in between
SHARE_MIN = 16  # tokens another key's cache must add to this key's own before its key/values are copied
DRAFT = 6  # tokens proposed by prompt lookup per verification pass
NGRAM = 3  # the last tokens that must match earlier text for a lookup draft


@dataclass
class ReuseStats:
    prompt_tokens: int = 0
    reused_tokens: int = 0
    copied_tokens: int = 0  # of the reused ones, those copied from another key's cache (a prompt starting alike)
    forward_passes: int = 0
    draft_tokens_accepted: int = 0


@dataclass
class _Entry:
    ids: list[int]  # tokens whose key/values `past` holds
    past: Cache


class PrefixReuseLM:
    """One model shared by all documents; a small LRU of per-document caches."""

    def __init__(self, lm: CausalLM, max_documents: int = 4, speculative: bool = True, reuse: bool = True,
                 drafter: "PrefixReuseLM | None" = None):
        self.lm = lm
        self.max_documents = max_documents if reuse else 0
        self.speculative = speculative
        # A smaller model with the same tokenizer (the 0.5B for the 1.5B on a GPU) drafts where prompt lookup has
        # nothing; its drafts are verified like lookup's, so the output stays exactly this model's greedy text.
        if drafter is not None and drafter.lm.tokenizer.get_vocab(True) != lm.tokenizer.get_vocab(True):
            raise ValueError("the draft model's tokenizer differs from the completion model's")
        self.drafter = drafter
        self._entries: LRU[Hashable, _Entry] = LRU(self.max_documents)
        self._lock = threading.Lock()  # one generation at a time: the CPU is the bottleneck anyway
        self.healing = TokenHealing(lm.tokenizer)

    def forget(self, key: Hashable) -> None:
        self._entries.pop(key)

    def cached(self, ids: Sequence[int]) -> int:
        """How many of `ids`'s first tokens need not run: the most that any key's cache holds (its own, or one
        it would copy)."""
        return self._longest_cached(ids)[0]

    def _longest_cached(self, ids: Sequence[int]) -> tuple[int, _Entry | None]:
        """The cache that holds the most of `ids`'s first tokens, and how many."""
        return max(((common_prefix(e.ids, ids), e) for e in self._entries.values()), key=lambda pair: pair[0],
                   default=(0, None))

    def generate(self, key: Hashable, ids: Sequence[int], config: GenerationConfig,
                 cancel: CancelToken | None = None, starts_with: str = "") -> tuple[Generation, ReuseStats]:
        """Generate after `ids`. `starts_with`: text the output must begin with (token healing: the prompt's
        last token was taken off because the user may be in the middle of it); it stays in the output."""
        with self._lock:
            return self._generate(key, list(ids) or list(self.lm.start_ids), config, cancel, starts_with)

    def warm(self, key: Hashable, ids: Sequence[int], cancel: CancelToken | None = None) -> ReuseStats:
        """Read `ids` into the key's cache without generating (the user is reading, the worker is idle); a request
        for this prompt, or one that extends it, then runs only its new tokens. `cancel` stops it between chunks,
        keeping what was read."""
        with self._lock:
            stats = ReuseStats(prompt_tokens=len(ids))
            if ids:
                self._read_prompt(key, list(ids), StopWatch(GenerationConfig(), cancel), stats)
            return stats

    def _generate(self, key, ids: list[int], config: GenerationConfig, cancel,
                  need: str = "") -> tuple[Generation, ReuseStats]:
        watch = StopWatch(config, cancel)
        stats = ReuseStats(prompt_tokens=len(ids))
        row = RowDecoder(self.lm.tokenizer, len(ids), config, self.lm.stop_ids)
        if config.max_new_tokens <= 0 or (reason := watch.prefill_interrupted()):
            return row.result(watch.elapsed(), "length" if config.max_new_tokens <= 0 else reason), stats
        logits, past, fed, reason = self._read_prompt(key, ids, watch, stats)
        if reason:
            return row.result(watch.elapsed(), reason), stats
        watch.prefill_done()
        rng = np.random.default_rng(config.seed)
        config = resolve_config(config, None)
        # Drafts are verified against the raw logits, so repetition settings decode without them.
        adjusted = bool(config.no_repeat_ngram_size) or config.repetition_penalty != 1.0
        greedy = config.temperature <= 0 and not adjusted

        def choose(logits_last: np.ndarray) -> int:
            last = self.healing.constrain(logits_last, need) if need else logits_last
            if adjusted:
                last = adjust_logits(last, [row.ids], config)
            return int(choose_tokens(last, config, rng)[0])

        def logprobs(rows: np.ndarray, tokens: list[int]) -> list[float | None]:
            return list(token_logprobs(rows, tokens)) if config.logprobs else [None] * len(tokens)

        token = choose(logits[:, -1, :])
        lp = logprobs(logits[:, -1, :], [token])[0]
        reason = None
        while True:
            need = self.healing.still_needed(need, token)
            row.push(token, watch.elapsed(), lp)
            if row.done or (reason := watch.interrupted()):
                break
            draft = self._draft(fed + [token]) if greedy and self.speculative and not need else []
            if not draft and greedy and self.drafter is not None and not need:
                draft = self._model_draft(key, fed + [token])
            logits, past = self._forward([token, *draft], len(fed), past, stats)
            fed = fed + [token]
            if not draft:
                token = choose(logits[:, -1, :])
                lp = logprobs(logits[:, -1, :], [token])[0]
                continue
            # Verify: position i predicts the token after draft[:i]; accept while the model agrees.
            predicted = logits[0].argmax(axis=-1)
            accepted = 0
            while accepted < len(draft) and predicted[accepted] == draft[accepted]:
                accepted += 1
            token = int(predicted[accepted])
            lps = logprobs(logits[0, : accepted + 1], [*draft[:accepted], token])
            for t, t_lp in zip(draft[:accepted], lps):
                row.push(t, watch.elapsed(), t_lp)
                if row.done:
                    break
            stats.draft_tokens_accepted += accepted
            fed = fed + draft[:accepted]
            past = _truncate(past, len(fed))
            lp = lps[-1]
            if row.done:
                break
        self._store(key, fed, past)
        return row.result(watch.elapsed(), reason), stats

    def _read_prompt(self, key, ids: list[int], watch: StopWatch, stats: ReuseStats):
        """Prefill what the key's cache lacks of `ids`, in chunks: (last logits, past, tokens fed, None), or an
        interruption's reason with what was read stored."""
        entry = self._entries.pop(key)
        keep = common_prefix(entry.ids, ids) if entry else 0
        past = entry.past if entry else None
        # Another prompt's cache that starts alike is copied, not run (looked for only where it could save some).
        shared, donor = self._longest_cached(ids) if keep + SHARE_MIN < len(ids) else (0, None)
        shared = min(shared, len(ids) - 1)
        if donor is not None and shared >= keep + SHARE_MIN:
            past, keep = self._copy(donor.past, shared, past), shared
            stats.copied_tokens = shared
        keep = min(keep, len(ids) - 1)  # the last prompt token always runs: its logits choose the first token
        past = _truncate(past, keep) if past is not None else self.lm.new_cache()
        stats.reused_tokens = keep
        fed = ids[:keep]
        logits = None
        for start in range(keep, len(ids), PREFILL_CHUNK):
            if reason := watch.prefill_interrupted():
                self._store(key, fed, past)
                return None, past, fed, reason
            part = ids[start : start + PREFILL_CHUNK]
            logits, past = self._forward(part, len(fed), past, stats, keep=1)  # only the last row is read
            fed = fed + part
        self._store(key, fed, past)
        return logits, past, fed, None

    def _copy(self, donor: Cache, length: int, own: Cache | None) -> Cache:
        """The donor's first `length` key/values, in this key's own buffers where it has them."""
        if not isinstance(donor, KVBuffers):
            return _truncate(donor, length)  # arrays no step writes in place: sharing them is safe
        target = own if isinstance(own, KVBuffers) else self.lm.new_cache()
        target.copy_prefix(donor, length)
        return target

    def _forward(self, tokens: list[int], offset: int, past: Cache, stats: ReuseStats, keep: int | None = None):
        n = len(tokens)
        ids = np.asarray([tokens], np.int64)
        mask = np.ones((1, offset + n), np.int64)
        positions = np.arange(offset, offset + n, dtype=np.int64)[None]
        stats.forward_passes += 1
        return self.lm.forward(ids, mask, positions, past, keep)

    def _draft(self, ids: list[int]) -> list[int]:
        """The tokens that followed the latest earlier occurrence of the last NGRAM tokens (prompt lookup)."""
        if len(ids) <= NGRAM:
            return []
        tail = ids[-NGRAM:]
        arr = np.asarray(ids[:-1])
        hits = np.flatnonzero(arr[: len(arr) - NGRAM + 1] == tail[0]) if len(arr) >= NGRAM else []
        for start in reversed(hits):
            if ids[start : start + NGRAM] == tail:
                follow = ids[start + NGRAM : start + NGRAM + DRAFT]
                if follow:
                    return follow
        return []

    def _model_draft(self, key, ids: list[int]) -> list[int]:
        """DRAFT tokens the draft model predicts greedily after `ids` (its own cache per document)."""
        config = GenerationConfig(max_new_tokens=DRAFT, stop_on_eos=False)
        return self.drafter.generate(key, ids, config)[0].token_ids

    def _store(self, key, ids: list[int], past: Cache) -> None:
        self._entries.put(key, _Entry(ids, past))


def _truncate(past: Cache, length: int) -> Cache:
    """Key/values for the first `length` positions ([batch, heads, positions, dim]); buffers written in place
    need nothing (the next step's mask says how much of them counts)."""
    if isinstance(past, KVBuffers):
        return past
    return [first_positions(p, length) for p in past]

