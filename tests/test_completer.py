"""The completer and the request scheduler without LSP: typing a shown suggestion reuses it, other edits run the
model again, healing, warming and the prompt budget."""
from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from fixture_repo import FILES

from plusls.completion.budget import MAX_TOKENS, MIN_TOKENS, context_budget
from plusls.completion.completer import Completer
from plusls.completion.prefix_reuse import PrefixReuseLM
from plusls.completion.prompt import Cursor, PromptBuilder, WindowState
from plusls.completion.settings import CompletionSettings
from plusls.exported.causal_lm import CausalLM
from plusls.exported.generation import CancelToken
from plusls.server.background import BackgroundQueue
from plusls.server.scheduler import RequestScheduler

MATH = FILES["src/mathutil.py"]
TYPED = MATH[: MATH.index("    a, b =") + len("    a, b =")]


def scheduler_for(completer: Completer) -> RequestScheduler:
    return RequestScheduler(completer, ThreadPoolExecutor(1), BackgroundQueue())


def test_typing_the_suggestion_reuses_it_and_other_edits_run_the_model(memorized):
    completer = Completer(lambda: CausalLM(memorized), CompletionSettings(debounce_ms=0, retrieval=False))

    async def complete(text: str):
        return await scheduler.complete("doc", Cursor(text, len(text), "python"))

    async def session() -> None:
        first = await complete(TYPED)
        assert first.text == " 0, 1" and not first.from_cache
        runs = completer.stats.model_runs
        typed = await complete(TYPED + " 0")  # the user types what the suggestion showed
        assert typed.text == ", 1" and typed.from_cache and typed.id == first.id
        assert completer.stats.model_runs == runs
        await complete(TYPED + " 9")  # something else: the model runs again
        assert completer.stats.model_runs == runs + 1
        again = await complete(TYPED)  # back to a prompt seen before: the prompt cache answers
        assert again.text == " 0, 1" and completer.stats.model_runs == runs + 1

    scheduler = scheduler_for(completer)
    asyncio.run(session())


def test_a_suggestion_cut_by_the_deadline_is_not_cached_as_final(memorized):
    """The generation deadline cuts the suggestion, not the prompt: the prompt is read in full and the next request
    reuses it; a prompt budget of 0 stops before reading anything."""
    cut = Completer(lambda: CausalLM(memorized), CompletionSettings(debounce_ms=0, retrieval=False, deadline_ms=0))
    starved = Completer(lambda: CausalLM(memorized), CompletionSettings(
        debounce_ms=0, retrieval=False, deadline_ms=0, prompt_deadline_ms=0))
    cursor = Cursor(TYPED, len(TYPED), "python")
    for _ in range(2):
        cut.suggest("doc", cursor, CancelToken())
    assert cut.stats.model_runs == 2 and cut.stats.cache_hits == 0  # asked again: it runs again
    prompt = cut.stats.prompt_tokens // 2
    assert prompt > 10 and cut.stats.reused_tokens == prompt - 1  # all but the last token, which always runs
    assert cut.stats.deadline_cuts == 2
    for _ in range(2):
        assert starved.suggest("doc", cursor, CancelToken()) is None
    assert starved.stats.reused_tokens == 0 and starved.stats.forward_passes == 0
    assert starved.stats.deadline_empty == 2


def test_token_healing_in_a_fim_prompt_takes_off_only_the_cursor_lines_tokens(exported):
    """Mid-word in a FIM prompt, the word's tokens after the middle marker come off and the output must start with
    them; at a line start nothing comes off (the marker itself never does)."""
    lm = CausalLM(exported["gpt2"])
    builder, model = PromptBuilder(lm.tokenizer, lm.manifest.fim, 128, 32), PrefixReuseLM(lm)
    middle = lm.manifest.fim["middle"]["id"]
    text = "def add(a, b):\n    retu\n\nprint(add(1, 2))\n"
    cursor = Cursor(text, text.index("\n\n"), "python")
    ids = builder.build(cursor, WindowState())
    cut, heal = model.healing.cut(ids, cursor, middle)
    assert 1 <= cut < len(ids) - ids.index(middle) and heal and "    retu".endswith(heal)
    assert lm.tokenizer.decode(ids[len(ids) - cut :]) == heal
    start = Cursor(text, text.index("    retu"), "python")
    assert model.healing.cut(builder.build(start, WindowState()), start, middle) == (0, "")


def test_warming_reads_the_prompt_ahead_and_the_request_reuses_it(memorized):
    """After an open or an edit, while nobody types, the prompt is read into the document's cache: the request
    that follows runs only its last token, and suggests what it would have without warming."""
    completer = Completer(lambda: CausalLM(memorized), CompletionSettings(debounce_ms=0, retrieval=False))
    cursor = Cursor(TYPED, len(TYPED), "python")
    completer.warm("doc", cursor, CancelToken())
    warmed = completer.stats.warmed_tokens
    assert warmed > 10 and completer.stats.model_runs == 0
    assert completer.suggest("doc", cursor, CancelToken()).text == " 0, 1"
    assert completer.stats.reused_tokens == warmed - 1
    stopped = CancelToken()
    stopped.cancel()
    completer.warm("other", cursor, stopped)  # a keystroke came first: nothing is read
    assert completer.stats.warmed_tokens == warmed


def test_the_prompt_budget_comes_from_the_speed_measured_at_load(memorized):
    assert context_budget(100.0, 32768) == 384  # 4 s of prompt at 100 tokens/s, whole chunks
    assert context_budget(5.0, 32768) == MIN_TOKENS and context_budget(1e6, 32768) == MAX_TOKENS
    assert context_budget(1e6, 2048) == 1024  # never more than half the model's context
    measured = Completer(lambda: CausalLM(memorized), CompletionSettings(debounce_ms=0, retrieval=False))
    fixed = Completer(lambda: CausalLM(memorized), CompletionSettings(context_tokens=300))
    for completer in (measured, fixed):
        completer.suggest("doc", Cursor(TYPED, len(TYPED), "python"), CancelToken())
    assert measured.stats.prompt_tokens_per_s > 0
    assert measured.stats.context_tokens == context_budget(measured.stats.prompt_tokens_per_s,
                                                           CausalLM(memorized).manifest.max_length)
    assert fixed.stats.context_tokens == 300 and fixed.stats.prompt_tokens_per_s == 0
