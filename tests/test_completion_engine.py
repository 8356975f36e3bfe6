"""The completion engine without LSP: typing a shown suggestion reuses it, other edits run the model again."""
from __future__ import annotations

import asyncio

from fixture_repo import FILES

from plusls.exported.causal_lm import CausalLM
from plusls.server.completion.engine import CompletionEngine
from plusls.server.completion.prompt import Cursor
from plusls.server.settings import CompletionSettings

MATH = FILES["src/mathutil.py"]
TYPED = MATH[: MATH.index("    a, b =") + len("    a, b =")]


def test_typing_the_suggestion_reuses_it_and_other_edits_run_the_model(memorized):
    engine = CompletionEngine(lambda: CausalLM(memorized), CompletionSettings(debounce_ms=0, retrieval=False))

    async def complete(text: str):
        return await engine.complete("doc", Cursor(text, len(text), "python"))

    async def session() -> None:
        first = await complete(TYPED)
        assert first.text == " 0, 1" and not first.from_cache
        runs = engine.stats.model_runs
        typed = await complete(TYPED + " 0")  # the user types what the suggestion showed
        assert typed.text == ", 1" and typed.from_cache and typed.id == first.id
        assert engine.stats.model_runs == runs
        await complete(TYPED + " 9")  # something else: the model runs again
        assert engine.stats.model_runs == runs + 1
        again = await complete(TYPED)  # back to a prompt seen before: the prompt cache answers
        assert again.text == " 0, 1" and engine.stats.model_runs == runs + 1

    asyncio.run(session())


def test_a_suggestion_cut_by_the_deadline_is_not_cached_as_final(memorized):
    engine = CompletionEngine(lambda: CausalLM(memorized),
                              CompletionSettings(debounce_ms=0, retrieval=False, deadline_ms=0))

    async def session() -> None:
        for _ in range(2):
            await engine.complete("doc", Cursor(TYPED, len(TYPED), "python"))
        assert engine.stats.model_runs == 2 and engine.stats.cache_hits == 0  # asked again: it runs again

    asyncio.run(session())
