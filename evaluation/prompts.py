"""Prompt formats: how a benchmark prompt is framed for the model, and where generation stops.

Small instruct models such as SmolLM2 close the code block right after a raw HumanEval docstring (0/164);
a code fence, starting the body's indentation, or the chat template changes what they do next.
"""
from __future__ import annotations

from dataclasses import dataclass

from plusls.common.chat import render_chat

FORMATS = {
    "raw": "the benchmark prompt as published",
    "fence": "prompt inside an opened ```python block",
    "indent": "prompt plus the function body's first indentation",
    "fence-indent": "both of the above",
    "chatml": "ChatML: the user asks to complete the code, the assistant answers in a ```python block with the "
              "whole solution (run after the prompt, so it may redefine the function)",
}
CHATML_TOKENS = ("<|im_start|>", "<|im_end|>")
INDENT = "    "
FENCE = "```python\n"
# Codex paper stop sequences: a new top-level statement ends the function.
FUNCTION_STOPS = ("\nclass", "\ndef", "\n#", "\nif", "\nprint")
# A whole solution restates the prompt (docstring included) before the body: EvalPlus's default budget.
WHOLE_NEW_TOKENS = 768


@dataclass(frozen=True)
class Framed:
    text: str  # what the model is given
    prefill: str  # code the framing already wrote for the model: the solution is prompt + prefill + completion
    stops: tuple[str, ...]  # extra stop sequences the framing needs
    whole: bool = False  # the completion is a whole solution, not a continuation: task stop sequences
    # (e.g. "\ndef") would cut it, and it runs after the prompt + a newline

    def new_tokens(self, continuation: int) -> int:
        """The generation budget: the task's for a continuation, room for the restated prompt for a whole one."""
        return max(continuation, WHOLE_NEW_TOKENS) if self.whole else continuation


def frame(prompt: str, fmt: str, chat_template: str | None = None) -> Framed:
    if fmt == "raw":
        return Framed(prompt, "", ())
    if fmt == "fence":
        return Framed(FENCE + prompt, "", ("```",))
    if fmt == "indent":
        return Framed(prompt + INDENT, INDENT, ())
    if fmt == "fence-indent":
        return Framed(FENCE + prompt + INDENT, INDENT, ("```",))
    if fmt == "chatml":
        user = f"Complete the following Python code:\n{FENCE}{prompt}```"
        if chat_template:
            text = render_chat(chat_template, user) + FENCE
        else:  # plain ChatML, for a model whose manifest records no template
            text = f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n{FENCE}"
        return Framed(text, "\n", ("```",), whole=True)
    raise ValueError(f"unknown prompt format {fmt!r}")
