"""The completion model as the docs features see it (chat-form summaries from the docs thread): each call runs on
the model thread, so one model user at a time, and gives way to a keystroke like any background work."""
from __future__ import annotations

from concurrent.futures import Executor

from plusls.completion.completer import Completer
from plusls.exported.generation import CancelToken, Generation, GenerationConfig
from plusls.exported.manifest import Manifest

from .background import BackgroundQueue


class ModelThread:
    def __init__(self, completer: Completer, executor: Executor, background: BackgroundQueue):
        self.completer, self.executor, self.background = completer, executor, background

    def manifest(self) -> Manifest:
        return self.executor.submit(self.completer.manifest).result()

    def generate(self, text: str, config: GenerationConfig, cancel: CancelToken | None = None) -> Generation:
        with self.background.yielding(cancel) as token:
            return self.executor.submit(self.completer.generate_text, text, config, token).result()
