"""Summary lines from the instruct completion model in chat form: the project's convention in a system turn, eight
real (code, summary) examples from the mined corpus (summary_examples.json: PSF/MIT/Apache-2.0 code, each with its
package and licence), then the function. The same prompt labels the docstring model's training data
(training.teacher) and is what `plusls eval summarize --model completer` measures.

Hover text is a follow-up turn in the same conversation (the summary as the answer, then "explain ..."): it shares
the whole summary prompt's key/values, so only the question is read; `plusls eval hover --model completer`
measures it.

The system turn and the examples never change, so their key/values stay cached; only the function is read per call.
"""
from __future__ import annotations

import json
import re
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Callable, Protocol

from plusls.common.chat import chat_messages, frame_chat, frame_of
from plusls.completion.prefix_reuse import PrefixReuseLM
from plusls.exported.causal_lm import CausalLM
from plusls.exported.errors import ModelDirError
from plusls.exported.generation import CancelToken, Generation, GenerationConfig

from .definition_at import Definition
from .explanation import hover_text
from .summarizer import Writer, degenerate, repeats_a_pair

SYSTEM = ("You write the first line of a Python function's docstring. Answer with one short sentence in the "
          "imperative mood, as in 'Return the user name.' or 'Create a new session.', at most 12 words. "
          "No backticks.")
MAX_CODE_CHARS, MAX_NEW_TOKENS = 1500, 40
STOP = ("\n",)
# Asked in one go, the instruct model explains at length in its own style; as a follow-up it stays short and on the
# function (docs/measurements.md). A newline ends the answer: what follows is a list of parameters.
EXPLAIN = ("Now explain to a programmer reading the code what this function does and what it returns, in two or "
           "three sentences of plain text.")
EXPLAIN_NEW_TOKENS = 64
# A first answer that says a word pair twice is asked again with that banned (token pairs): the same prompt, so the
# second answer stays on the function, which a follow-up turn did not (docs/measurements.md).
NO_REPEAT = 2
# Words ending in s that are not third-person verbs ("Returns ..." is; "Is ..." is not).
NOT_VERBS = {"is", "has", "does", "was", "this", "its", "as", "us", "class", "unless", "always", "thus"}


@lru_cache(maxsize=1)
def examples() -> list[dict]:
    return json.loads((Path(__file__).with_name("summary_examples.json")).read_text())


def summary_messages(code: str) -> list[dict[str, str]]:
    shots = [(e["code"], e["summary"]) for e in examples()]
    return chat_messages(SYSTEM, shots, code[:MAX_CODE_CHARS])


def explain_messages(code: str, summary: str) -> list[dict[str, str]]:
    shots = [(e["code"], e["summary"]) for e in examples()] + [(code[:MAX_CODE_CHARS], summary)]
    return chat_messages(SYSTEM, shots, EXPLAIN)


def explanation(generation: Generation, name: str) -> str:
    return hover_text(generation.text, name, complete=generation.finish_reason != "length")


def imperative(word: str) -> str:
    """Returns -> Return, Applies -> Apply, Pushes -> Push; other words unchanged."""
    if word.lower() in NOT_VERBS or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if re.search(r"(ss|sh|ch|x|z)es$", word):
        return word[:-2]
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


def first_sentence(text: str) -> str:
    text = " ".join(text.replace("`", "").strip().strip("\"'").split())
    m = re.match(r"(.+?[.!?])(\s|$)", text)
    return m.group(1) if m else text


def clean_summary(text: str, name: str = "") -> str:
    """The model's answer as a summary line: its first sentence, imperative, no markup; "" when degenerate (or
    only `name` in words)."""
    words = first_sentence(text).split()
    if words:
        words[0] = imperative(words[0])
    text = " ".join(words)
    return "" if degenerate(text, name) else text


def summarize(generate: Callable[[GenerationConfig], Generation], config: GenerationConfig,
              name: str) -> tuple[str, bool]:
    """(summary, finished) from `generate`, asked once more without repeated pairs when the first answer is
    degenerate; not finished: cancelled."""
    for attempt in (config, replace(config, no_repeat_ngram_size=NO_REPEAT)):
        generation = generate(attempt)
        if generation.finish_reason == "cancelled":
            return "", False
        summary = clean_summary(generation.text, name)
        if summary or not repeats_a_pair(first_sentence(generation.text)):
            break
    return summary, True


class ChatModel(Protocol):
    def can_chat(self) -> bool: ...

    def chat(self, messages: list[dict[str, str]], config: GenerationConfig,
             cancel: CancelToken | None) -> Generation: ...


class ChatWriter:
    """Summaries from the completion model in chat form (the completion engine runs it, so it is one model and one
    CPU user at a time, and a suggestion request stops a summary); `fallback` writes them for a completion model
    without a chat template."""

    def __init__(self, model: ChatModel, fallback: Writer):
        self.model, self.fallback = model, fallback
        self._chats: bool | None = None  # None: not asked yet

    def chats(self) -> bool:
        if self._chats is None:
            self._chats = self.model.can_chat()
        return self._chats

    def __call__(self, definition: Definition, cancel: CancelToken | None,
                 deadline_s: float | None) -> tuple[str, bool]:
        if not self.chats():
            return self.fallback(definition, cancel, deadline_s)
        config = GenerationConfig(max_new_tokens=MAX_NEW_TOKENS, stop=STOP, deadline_s=deadline_s)
        messages = summary_messages(definition.code)
        return summarize(lambda c: self.model.chat(messages, c, cancel), config, definition.name)

    def explain(self, definition: Definition, summary: str, cancel: CancelToken | None,
                deadline_s: float | None) -> tuple[str, bool] | None:
        if not self.chats():
            return self.fallback.explain(definition, summary, cancel, deadline_s)
        config = GenerationConfig(max_new_tokens=EXPLAIN_NEW_TOKENS, stop=STOP, deadline_s=deadline_s)
        generation = self.model.chat(explain_messages(definition.code, summary), config, cancel)
        if generation.finish_reason == "cancelled":
            return "", False
        return explanation(generation, definition.name), True

    def reset(self) -> None:
        self._chats = None
        self.fallback.reset()


class ChatSummarizer:
    """Summary lines from an exported instruct causal LM in chat form, outside the server: the distillation
    teacher (training.teacher) and `plusls eval summarize --model completer`."""

    def __init__(self, directory: Path):
        self.lm = CausalLM(directory)
        frame = frame_of(self.lm.manifest.config)
        if frame is None:
            raise ModelDirError(f"{directory}: the manifest records no chat template; chat-form summaries need an "
                                "instruct model exported with one (plusls export reads it from the GGUF or "
                                "tokenizer)")
        self.frame = frame
        self.reuse = PrefixReuseLM(self.lm, max_documents=1, speculative=False)
        self.config = GenerationConfig(max_new_tokens=MAX_NEW_TOKENS, stop=STOP)

    def summarize(self, code: str, name: str = "") -> str:
        ids = self.lm.encode(frame_chat(self.frame, summary_messages(code)))
        return summarize(lambda c: self.reuse.generate("summaries", ids, c)[0], self.config, name)[0]

    def answer(self, messages: list[dict[str, str]], max_new_tokens: int) -> str:
        """The model's answer to another conversation (one line), through the same cache."""
        ids = self.lm.encode(frame_chat(self.frame, messages))
        return self.reuse.generate("summaries", ids, replace(self.config, max_new_tokens=max_new_tokens))[0].text

    def explain(self, code: str, name: str = "") -> str:
        """What the server's hover shows: the explanation, else the summary line."""
        summary = self.summarize(code, name)
        if not summary:
            return ""
        ids = self.lm.encode(frame_chat(self.frame, explain_messages(code, summary)))
        config = replace(self.config, max_new_tokens=EXPLAIN_NEW_TOKENS)
        return explanation(self.reuse.generate("summaries", ids, config)[0], name) or summary
