"""What a user can set about suggestions (`plusls.completion.*` in the editor's settings; parsed in the server)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CompletionSettings:
    enabled: bool = True
    debounce_ms: int = 60
    max_new_tokens: int = 48
    # Prompt budget (prefix, suffix, retrieved snippets); 0: from the prompt speed measured on this machine
    # (speed.py, budget.py).
    context_tokens: int = 0
    suffix_tokens: int = 64
    deadline_ms: int = 2000  # for generating, counted once the prompt is read
    prompt_deadline_ms: int = 10000  # for reading the prompt (a newer keystroke still stops it, keeping what was read)
    retrieval: bool = True  # prepend similar workspace snippets (retrieval-augmented completion)
    # Snippets in the model's repository layout (<|repo_name|>, <|file_sep|>) where its manifest declares one, instead
    # of comments: off, since it scored lower with the instruct Qwen models (docs/measurements.md).
    repo_layout: bool = False
    multiline: bool = True  # multi-line suggestions at an empty line
    prefix_reuse: bool = True  # keep each document's key/value cache and run only a prompt's new tokens
    prompt_lookup: bool = True  # greedy drafts copied from the prompt, verified several tokens per pass
    # At a line start with code below, a prefix-only rival line too, and the surer one shown (line_choice.py).
    # None: on for the completers where that measured better (DefaultModel.line_choice: the 0.5B).
    line_choice: bool | None = None


@dataclass(frozen=True)
class RemoteSettings:
    """A shared inference server, used when `models.completion` is its URL (`plusls.remote.*`)."""
    api: str = "openai"  # "openai": POST /v1/completions (vLLM, TGI, llama-server, LM Studio); "infill": llama-server
    model: str | None = None  # the served model's name, sent as `model` (vLLM and TGI check it)
    template: str = "qwen2.5-coder"  # the FIM prompt's family (fim_templates.py), for the "openai" API
    # The name of the environment variable that holds the API key (sent as a bearer token); never the key itself.
    api_key_env: str | None = None
    verify_tls: bool = True
    timeout_ms: int = 5000  # for the server's first answer; the completion deadline then counts
    # The local model that completes while the server cannot answer: "auto", a default's name or an exported
    # directory, as models.completion takes; null: none.
    fallback: str | None = "auto"
    context_tokens: int = 2048  # the prompt's size, counted as about 3 characters a token
