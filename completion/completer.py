"""One suggestion for a cursor: the prompt (with retrieved snippets), token healing, generation that reuses the
document's key/values, a prefix-only rival line at a line start (line_choice.py), filters. The same model also
reads prompts ahead (warming) and writes text for other features (chat-form summaries). Not thread-safe: the server
calls it from its one model thread."""
from __future__ import annotations

import asyncio
import hashlib
import threading
from concurrent.futures import Executor
from dataclasses import asdict, dataclass, replace
from typing import Callable

from plusls.common.chat import frame_chat, frame_of
from plusls.common.errors import PluslsError

from plusls.exported.causal_lm import CausalLM
from plusls.exported.defaults import chooses_lines
from plusls.exported.generation import CancelToken, Generation, GenerationConfig
from plusls.exported.manifest import Manifest

from .budget import context_budget
from .filters import postprocess
from .healing import without_healed
from .line_choice import applies, line_score, rival_wins
from .prefix_reuse import PrefixReuseLM
from .prompt import Cursor, PromptBuilder, Snippet, WindowState
from .settings import CompletionSettings
from .speed import SpeedCache
from .suggestion_cache import Suggestion, SuggestionCache

Retriever = Callable[[Cursor], list[Snippet]]
OTHER_TEXT_KEY = "\0other"  # the key/value cache of text that is not a document's (chat-form summaries); never a URI
PREFIX_ONLY = "prefix-only"  # (uri, this): a document's key/value cache for its prefix-only prompt (the rival's)
RIVAL_COLD_TOKENS = 64  # a rival with more prompt tokens to read than this (past what is cached) does not run


@dataclass
class CompletionStats:
    requests: int = 0
    dropped: int = 0  # superseded during the debounce: the model never ran
    cancelled: int = 0
    cache_hits: int = 0
    model_runs: int = 0
    prompt_tokens: int = 0
    reused_tokens: int = 0
    draft_tokens_accepted: int = 0
    copied_tokens: int = 0  # reused from another prompt's cache (the rival's start, from its FIM prompt)
    forward_passes: int = 0
    warmed_tokens: int = 0  # prompt tokens read ahead while the user was not typing
    deadline_cuts: int = 0  # suggestions a deadline cut short
    deadline_empty: int = 0  # of those, the ones left with nothing to show
    context_tokens: int = 0  # the prompt budget in use (contextTokens, or from the measured speed)
    prompt_tokens_per_s: float = 0.0  # measured on this machine (speed.py) when contextTokens is 0
    remote_requests: int = 0  # suggestions asked of an inference server (remote_completer.py)
    remote_errors: int = 0  # of those, the ones it did not answer
    fallbacks: int = 0  # suggestions the local model wrote because the server could not
    remote_seconds: float = 0.0  # spent waiting on the server's answers (the rest of a request is plusls's own)
    rival_runs: int = 0  # prefix-only rival lines generated at line starts (line_choice.py)
    rival_chosen: int = 0  # of those, the ones shown instead

    def to_dict(self) -> dict:
        return asdict(self)


class Completer:
    def __init__(self, load_model: Callable[[], CausalLM], settings: CompletionSettings,
                 retriever: Retriever | None = None, load_drafter: Callable[[], CausalLM | None] | None = None,
                 cache_size: int = 256, speeds: SpeedCache | None = None, line_after_middle: bool = True):
        self._load_model = load_model
        self._load_drafter = load_drafter
        self.line_after_middle = line_after_middle
        self.settings = settings
        self.retriever = retriever
        self.stats = CompletionStats()
        self.speeds = speeds or SpeedCache()
        self.cache = SuggestionCache(cache_size)
        self._windows: dict[str, WindowState] = {}
        self._model: PrefixReuseLM | None = None
        self._builder: PromptBuilder | None = None
        self._rivals = False  # line choice on for the loaded model (settings, else its default's measurement)
        self._loading = threading.Lock()  # the manifest may be asked from another thread

    def manifest(self) -> Manifest:
        return self._ensure_model()[0].lm.manifest

    def suggest(self, uri: str, cursor: Cursor, cancel: CancelToken) -> Suggestion | None:
        if cancel.cancelled:
            self.stats.cancelled += 1
            return None
        model, builder = self._ensure_model()
        ids = self._prompt(uri, cursor, builder)
        multiline = cursor.multiline and self.settings.multiline
        key = hashlib.sha1(f"{multiline}:{ids}".encode()).hexdigest()
        if (text := self.cache.answer(key)) is not None:
            self.stats.cache_hits += 1
            return self.cache.show(uri, cursor, text, key, from_cache=True)
        config = GenerationConfig(
            max_new_tokens=self.settings.max_new_tokens,
            deadline_s=self.settings.deadline_ms / 1000,
            prefill_deadline_s=self.settings.prompt_deadline_ms / 1000,
            stop=() if multiline else ("\n",),
            logprobs=self._rivals and applies(cursor),  # where a rival may run (line_choice.py)
        )
        cut, healed = model.healing.cut(ids, cursor, builder.fim["middle"]["id"] if builder.fim else None)
        self.stats.model_runs += 1
        generation, reuse = model.generate(uri, ids[: len(ids) - cut], config, cancel, starts_with=healed)
        self._count(reuse)
        settled = True
        if generation.finish_reason not in ("cancelled", "deadline"):
            generation, healed, settled = self._line(model, builder, uri, cursor, generation, healed, config,
                                                     cancel)
        if generation.finish_reason == "cancelled":
            self.stats.cancelled += 1
            return None
        text = postprocess(without_healed(generation.text, healed), cursor.filter_context(self.settings.multiline))
        if generation.finish_reason == "deadline":  # a cut-short suggestion is never cached as the answer
            self.stats.deadline_cuts += 1
            self.stats.deadline_empty += not text
        elif settled:
            self.cache.store(key, text)
        return self.cache.show(uri, cursor, text, key)

    def warm(self, uri: str, cursor: Cursor, cancel: CancelToken) -> None:
        """Read the prompt at `cursor` into the document's cache: the next request runs only its new tokens (and a
        rival copies its start). `cancel` stops it between chunks, keeping what was read."""
        if cancel.cancelled:
            return
        model, builder = self._ensure_model()
        model.healing.index()  # built here, while nobody waits, not in the first request that heals a token
        stats = model.warm(uri, self._prompt(uri, cursor, builder), cancel)
        self.stats.warmed_tokens += stats.prompt_tokens - stats.reused_tokens
        self.stats.forward_passes += stats.forward_passes

    def generate_text(self, text: str, config: GenerationConfig, cancel: CancelToken | None = None) -> Generation:
        """The model on `text` for something other than a suggestion."""
        model, _ = self._ensure_model()
        return model.generate(OTHER_TEXT_KEY, model.lm.encode(text), config, cancel)[0]

    def can_chat(self) -> bool:
        """Whether the model's manifest records a chat template (an instruct model)."""
        return frame_of(self.manifest().config) is not None

    def chat(self, messages: list[dict[str, str]], config: GenerationConfig,
             cancel: CancelToken | None = None) -> Generation:
        """The model's answer to a conversation (chat-form summaries), framed by its own template."""
        frame = frame_of(self.manifest().config)
        if frame is None:
            raise PluslsError("the completion model has no chat template: it cannot write summaries")
        return self.generate_text(frame_chat(frame, messages), config, cancel)

    def answer_logprob(self, messages: list[dict[str, str]], answer: str) -> float:
        """log p(answer | the conversation) (search reranking)."""
        model, _ = self._ensure_model()
        return model.lm.answer_logprob(messages, answer)

    async def complete(self, uri: str, cursor: Cursor, cancel: CancelToken, executor: Executor) -> Suggestion | None:
        """suggest() on the model thread."""
        return await asyncio.get_running_loop().run_in_executor(executor, self.suggest, uri, cursor, cancel)

    def forget(self, uri: str) -> None:
        self._windows.pop(uri, None)
        self.cache.forget(uri)
        if self._model:
            self._model.forget(uri)
            self._model.forget((uri, PREFIX_ONLY))

    def reload(self, settings: CompletionSettings | None = None) -> None:
        """New settings or a new model directory: the next call loads the model again."""
        self.settings = settings or self.settings
        with self._loading:
            self._model = self._builder = None
        self.cache.clear_answers()

    def _line(self, model: PrefixReuseLM, builder: PromptBuilder, uri: str, cursor: Cursor, fim: Generation,
              healed: str, config: GenerationConfig, cancel: CancelToken) -> tuple[Generation, str, bool]:
        """What to show and its healed start: the FIM generation, or the prefix-only rival's line where the model is
        surer of it than of the FIM first line (line_choice.py); and whether that is settled. The rival's prompt
        starts as the FIM one does, whose key/values it copies; where more than RIVAL_COLD_TOKENS of it are left to
        read (a huge line), or it was cut short, the FIM line is shown, not cached as the answer."""
        if not config.logprobs:  # set where a rival may run
            return fim, healed, True
        key = (uri, PREFIX_ONLY)
        ids = builder.build(cursor, self._windows[uri], prefix_only=True)
        if len(ids) - model.cached(ids) > RIVAL_COLD_TOKENS:
            return fim, healed, False
        cut, rival_healed = model.healing.cut(ids, cursor, None, one_line=True)
        self.stats.rival_runs += 1
        rival, reuse = model.generate(key, ids[: len(ids) - cut], replace(config, stop=("\n",)), cancel,
                                      starts_with=rival_healed)
        self._count(reuse)
        if rival.finish_reason in ("cancelled", "deadline"):
            return fim, healed, False
        tokenizer = model.lm.tokenizer
        fim_score, rival_score = (line_score(g.token_ids, g.logprobs, tokenizer) for g in (fim, rival))
        if not rival_wins(without_healed(fim.text, healed), fim_score, without_healed(rival.text, rival_healed),
                          rival_score):
            return fim, healed, True
        self.stats.rival_chosen += 1
        return rival, rival_healed, True

    def _count(self, reuse) -> None:
        for name in ("prompt_tokens", "reused_tokens", "copied_tokens", "draft_tokens_accepted", "forward_passes"):
            setattr(self.stats, name, getattr(self.stats, name) + getattr(reuse, name))

    def _prompt(self, uri: str, cursor: Cursor, builder: PromptBuilder) -> list[int]:
        window = self._windows.setdefault(uri, WindowState())
        if self.retriever is not None and self.settings.retrieval:
            scope = _scope_key(cursor)
            if scope != window.snippets_for:
                window.snippets = self.retriever(cursor)
                window.snippets_for = scope
        elif window.snippets:
            window.snippets = []
        return builder.build(cursor, window)

    def _ensure_model(self) -> tuple[PrefixReuseLM, PromptBuilder]:
        with self._loading:
            if self._model is None or self._builder is None:
                self._model, self._builder = self._load()
            return self._model, self._builder

    def _load(self) -> tuple[PrefixReuseLM, PromptBuilder]:
        lm = self._load_model()
        budget = self.settings.context_tokens
        if not budget:
            self.stats.prompt_tokens_per_s = self.speeds.speed_of(lm).prefill_tokens_per_s
            budget = context_budget(self.stats.prompt_tokens_per_s, lm.manifest.max_length)
        self.stats.context_tokens = budget
        repo = lm.manifest.special_tokens.get("repo") if self.settings.repo_layout else None
        builder = PromptBuilder(lm.tokenizer, lm.manifest.fim, budget, self.settings.suffix_tokens, repo,
                                self.line_after_middle)
        draft = self._load_drafter() if self._load_drafter else None
        drafter = PrefixReuseLM(draft, speculative=False, reuse=self.settings.prefix_reuse) if draft else None
        choice = self.settings.line_choice
        self._rivals = builder.fim is not None and (chooses_lines(lm.files.directory) if choice is None else choice)
        documents = 8 if self._rivals else 4  # two caches per document where a rival runs: its prompt's, the FIM one's
        model = PrefixReuseLM(lm, max_documents=documents, speculative=self.settings.prompt_lookup,
                              reuse=self.settings.prefix_reuse, drafter=drafter)
        return model, builder


def _scope_key(cursor: Cursor) -> str:
    """The nearest line above the cursor that starts at column 0 (the enclosing top-level definition)."""
    pos = cursor.line_start
    while pos > 0:
        start = cursor.text.rfind("\n", 0, pos - 1) + 1
        line = cursor.text[start : pos - 1]
        if line and not line[0].isspace():
            return f"{start}:{line}"
        pos = start
        if cursor.line_start - pos > 20000:
            break
    return "top"
