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
    """The generation deadline cuts the suggestion, not the prompt: the prompt is read in full and the next request
    reuses it; a prompt budget of 0 stops before reading anything."""
    engine = CompletionEngine(lambda: CausalLM(memorized),
                              CompletionSettings(debounce_ms=0, retrieval=False, deadline_ms=0))

    async def session() -> None:
        for _ in range(2):
            await engine.complete("doc", Cursor(TYPED, len(TYPED), "python"))
        assert engine.stats.model_runs == 2 and engine.stats.cache_hits == 0  # asked again: it runs again
        prompt = engine.stats.prompt_tokens // 2
        assert prompt > 10 and engine.stats.reused_tokens == prompt - 1  # all but the last token, which always runs
        starved = CompletionEngine(lambda: CausalLM(memorized), CompletionSettings(
            debounce_ms=0, retrieval=False, deadline_ms=0, prompt_deadline_ms=0))
        for _ in range(2):
            assert await starved.complete("doc", Cursor(TYPED, len(TYPED), "python")) is None
        assert starved.stats.reused_tokens == 0 and starved.stats.forward_passes == 0

    asyncio.run(session())


def test_token_healing_in_a_fim_prompt_takes_off_only_the_cursor_lines_tokens(exported):
    """Mid-word in a FIM prompt, the word's tokens after the middle marker come off and the output must start with
    them; at a line start nothing comes off (the marker itself never does)."""
    from plusls.server.completion.prefix_reuse import PrefixReuseLM
    from plusls.server.completion.prompt import PromptBuilder, WindowState

    lm = CausalLM(exported["gpt2"])
    builder, model = PromptBuilder(lm.tokenizer, lm.manifest.fim, 128, 32), PrefixReuseLM(lm)
    middle = lm.manifest.fim["middle"]["id"]
    text = "def add(a, b):\n    retu\n\nprint(add(1, 2))\n"
    cursor = Cursor(text, text.index("\n\n"), "python")
    ids = builder.build(cursor, WindowState())
    cut, heal = CompletionEngine._heal(model, builder, ids, cursor)
    assert 1 <= cut < len(ids) - ids.index(middle) and heal and "    retu".endswith(heal)
    assert lm.tokenizer.decode(ids[len(ids) - cut :]) == heal
    start = Cursor(text, text.index("    retu"), "python")
    assert CompletionEngine._heal(model, builder, builder.build(start, WindowState()), start) == (0, "")


def test_warming_reads_the_prompt_ahead_and_the_request_reuses_it(memorized):
    """After an open or an edit, while nobody types, the prompt is read into the document's cache: the request
    that follows runs only its last token, and suggests what it would have without warming."""
    engine = CompletionEngine(lambda: CausalLM(memorized), CompletionSettings(debounce_ms=0, retrieval=False))

    async def session() -> None:
        await engine.warm("doc", Cursor(TYPED, len(TYPED), "python"))
        warmed = engine.stats.warmed_tokens
        assert warmed > 10 and engine.stats.model_runs == 0
        first = await engine.complete("doc", Cursor(TYPED, len(TYPED), "python"))
        assert first.text == " 0, 1"
        assert engine.stats.reused_tokens == warmed - 1

    asyncio.run(session())


def test_warming_waits_for_a_quiet_document_and_gives_way_to_requests(memorized, monkeypatch):
    import plusls.server.completion.engine as engine_module

    monkeypatch.setattr(engine_module, "WARM_AFTER_S", 0.05)
    engine = CompletionEngine(lambda: CausalLM(memorized), CompletionSettings(debounce_ms=0, retrieval=False))
    asked: list[str] = []

    def cursor() -> Cursor:
        asked.append("now")
        return Cursor(TYPED, len(TYPED), "python")

    async def session() -> None:
        engine.schedule_warm("doc", cursor)
        await engine.complete("doc", Cursor(TYPED, len(TYPED), "python"))  # a request first: no warming after it
        await asyncio.sleep(0.2)
        assert asked == [] and engine.stats.warmed_tokens == 0
        engine.schedule_warm("doc", cursor)
        engine.schedule_warm("doc", cursor)  # a second edit restarts the wait: one warm-up, not two
        await asyncio.sleep(0.3)
        while engine._warming:
            await asyncio.sleep(0.05)
        assert asked == ["now"]
        off = CompletionEngine(lambda: CausalLM(memorized), CompletionSettings(prefix_reuse=False))
        off.schedule_warm("doc", cursor)
        await asyncio.sleep(0.2)
        assert asked == ["now"]

    asyncio.run(session())


def test_the_prompt_budget_comes_from_the_speed_measured_at_load(memorized):
    from plusls.server.completion.budget import MAX_TOKENS, MIN_TOKENS, context_budget

    assert context_budget(100.0, 32768) == 384  # ~100 tokens/s (Qwen 0.5B on 2 cores): 4 s of prompt
    assert context_budget(5.0, 32768) == MIN_TOKENS and context_budget(1e6, 32768) == MAX_TOKENS
    assert context_budget(1e6, 2048) == 1024  # never more than half the model's context
    measured = CompletionEngine(lambda: CausalLM(memorized), CompletionSettings(debounce_ms=0, retrieval=False))
    fixed = CompletionEngine(lambda: CausalLM(memorized), CompletionSettings(context_tokens=300))

    async def session() -> None:
        for engine in (measured, fixed):
            await engine.complete("doc", Cursor(TYPED, len(TYPED), "python"))

    asyncio.run(session())
    assert measured.stats.prompt_tokens_per_s > 0
    assert measured.stats.context_tokens == context_budget(measured.stats.prompt_tokens_per_s,
                                                           CausalLM(memorized).manifest.max_length)
    assert fixed.stats.context_tokens == 300 and fixed.stats.prompt_tokens_per_s == 0


def test_warming_with_a_model_that_cannot_load_only_logs(monkeypatch, caplog):
    import plusls.server.completion.engine as engine_module
    from plusls.exported.errors import ModelDirError

    monkeypatch.setattr(engine_module, "WARM_AFTER_S", 0.01)

    def broken() -> CausalLM:
        raise ModelDirError("model directory /nowhere does not exist")

    engine = CompletionEngine(broken, CompletionSettings())

    async def session() -> None:
        engine.schedule_warm("doc", lambda: Cursor(TYPED, len(TYPED), "python"))
        await asyncio.sleep(0.3)

    asyncio.run(session())
    assert "warming doc failed: model directory /nowhere does not exist" in caplog.text
