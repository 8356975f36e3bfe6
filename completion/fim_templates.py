"""FIM prompts as text, per model family, for inference servers that take a prompt string (OpenAI-compatible
/v1/completions: vLLM rejects `suffix` and llama-server ignores it there, so plusls renders the prompt itself).
Prefix-suffix-middle with the whole prefix (the cursor's line included) before the suffix, as the models were trained
and as llama-server's /infill lays it out (in-process, the line's start goes after the middle marker so a keystroke
reuses the suffix's key/values; on mid-line suggestions the two layouts measured level, bench/fim_layout.py). Each
family's stop strings end a suggestion where the model would start another part."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FimTemplate:
    prefix: str
    suffix: str
    middle: str
    stop: tuple[str, ...]

    def render(self, prefix: str, suffix: str) -> str:
        return f"{self.prefix}{prefix}{self.suffix}{suffix}{self.middle}"


TEMPLATES = {
    "qwen2.5-coder": FimTemplate("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>",
                                 ("<|endoftext|>", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>",
                                  "<|fim_pad|>", "<|file_sep|>", "<|repo_name|>", "<|im_end|>")),
    "starcoder2": FimTemplate("<fim_prefix>", "<fim_suffix>", "<fim_middle>",
                              ("<|endoftext|>", "<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<file_sep>")),
    "deepseek-coder": FimTemplate("<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>",
                                  ("<｜end▁of▁sentence｜>", "<|EOT|>", "<｜fim▁begin｜>", "<｜fim▁hole｜>",
                                   "<｜fim▁end｜>")),
    # CodeLlama's spaces are part of its format.
    "codellama": FimTemplate("<PRE> ", " <SUF>", " <MID>", ("<EOT>", "<PRE>", "<SUF>", "<MID>", "</s>")),
}
