"""The completion model as the docs features see it (chat-form summaries from the docs thread): each call runs on
the model thread, so one model user at a time, and gives way to a keystroke like any background work."""
from __future__ import annotations

from concurrent.futures import Executor

from plusls.completion.completer import Completer
from plusls.completion.remote_completer import RemoteCompleter
from plusls.exported.generation import CancelToken, Generation, GenerationConfig

from .background import BackgroundQueue


class ModelThread:
    def __init__(self, completer: Completer | RemoteCompleter, executor: Executor, background: BackgroundQueue):
        self.completer, self.executor, self.background = completer, executor, background

    def can_chat(self) -> bool:
        return self.executor.submit(self.completer.can_chat).result()

    def chat(self, messages: list[dict[str, str]], config: GenerationConfig,
             cancel: CancelToken | None = None) -> Generation:
        with self.background.yielding(cancel) as token:
            return self.executor.submit(self.completer.chat, messages, config, token).result()

    def generate(self, text: str, config: GenerationConfig, cancel: CancelToken | None = None) -> Generation:
        with self.background.yielding(cancel) as token:
            return self.executor.submit(self.completer.generate_text, text, config, token).result()

    def answer_logprob(self, messages: list[dict[str, str]], answer: str) -> float:
        """log p(answer | messages) (search reranking): one short pass, so a keystroke waits at most for it."""
        return self.executor.submit(self.completer.answer_logprob, messages, answer).result()
