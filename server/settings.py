"""One typed settings object, parsed from initializationOptions and workspace/didChangeConfiguration.

Keys are the camelCase JSON an editor sends (`completion.debounceMs`); a bad key or value keeps the previous value
and is reported, so a typo in an editor config never stops the server.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, is_dataclass, replace
from typing import Any, Union, get_args, get_origin, get_type_hints

from plusls.completion.fim_templates import TEMPLATES
from plusls.completion.remote import API_KINDS
from plusls.completion.settings import CompletionSettings, RemoteSettings

PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")
# String settings that take one of a few values.
CHOICES = {"summaries": ("completion", "docstring"), "api": API_KINDS, "template": tuple(TEMPLATES)}


@dataclass(frozen=True)
class ModelSettings:
    dir: str | None = None  # where the default models are exported (default ~/.cache/plusls/models)
    # "auto": the largest installed default completer this machine serves within the latency budgets
    # (completion/choice.py; null means the same); or a default's name ("qwen2.5-coder-1.5b",
    # "qwen2.5-coder-0.5b"), or an exported causal-lm directory, or an inference server's URL (`remote.*`).
    completion: str | None = "auto"
    docstring: str | None = None  # an exported seq2seq directory; default the bundled docstring model
    embedding: str | None = None  # an exported embedding directory; default the fine-tuned MiniLM (EMBEDDER)
    # A smaller causal-lm with the completion model's tokenizer that drafts tokens for it (verified, so the text
    # is unchanged); default: the 0.5B when the default 1.5B completes on CUDA, else none.
    draft: str | None = None
    # Who writes hover summaries and docstring summary lines: "completion" (the completion model in chat form, when
    # its manifest has a chat template; else the docstring model) or "docstring" (the encoder-decoder).
    summaries: str = "completion"


@dataclass(frozen=True)
class FeatureSettings:
    enabled: bool = True


@dataclass(frozen=True)
class SearchSettings:
    enabled: bool = True
    index_on_start: bool = True
    max_file_bytes: int = 1_000_000
    # A team's shared index, "postgresql://user@host/db" (pgvector; the password from ~/.pgpass or PGPASSWORD, not
    # here); null: the local index. The workspace's files are stored under `repo` (default: its folder's name).
    store: str | None = None
    repo: str | None = None
    # Embeddings from an OpenAI-compatible /v1/embeddings server instead of the local model (the shared index must
    # have been filled with the same one: `plusls index --embed-url`); the key's environment variable, not the key.
    embed_url: str | None = None
    embed_model: str | None = None
    embed_key_env: str | None = None
    # The search command (plusls.search) reranks its top results by the local completion model's likelihood of the
    # query (indexer/query_likelihood.py), for at most a few seconds; workspace/symbol, which answers as the user
    # types, never does.
    rerank: bool = True


@dataclass(frozen=True)
class Settings:
    models: ModelSettings = field(default_factory=ModelSettings)
    providers: Union[str, list] = "auto"
    completion: CompletionSettings = field(default_factory=CompletionSettings)
    remote: RemoteSettings = field(default_factory=RemoteSettings)
    hover: FeatureSettings = field(default_factory=FeatureSettings)
    docstring: FeatureSettings = field(default_factory=FeatureSettings)
    search: SearchSettings = field(default_factory=SearchSettings)
    telemetry: FeatureSettings = field(default_factory=FeatureSettings)


def is_database_url(value: str | None) -> bool:
    return bool(value) and value.startswith(("postgresql://", "postgres://"))


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def parse_settings(raw: Any, base: Settings | None = None) -> tuple[Settings, list[str]]:
    """Settings with `raw` applied over `base`, and one message per rejected key or value."""
    errors: list[str] = []
    settings = _apply(base or Settings(), raw, "", errors)
    return settings, errors


def _apply(obj: Any, raw: Any, where: str, errors: list[str]) -> Any:
    if raw is None:
        return obj
    if not isinstance(raw, dict):
        errors.append(f"{where or 'settings'}: expected an object, got {type(raw).__name__}")
        return obj
    hints = get_type_hints(type(obj))
    names = {_camel(f.name): f.name for f in fields(obj)}
    changes: dict[str, Any] = {}
    for key, value in raw.items():
        name = names.get(key) or (key if key in hints else None)
        path = f"{where}.{key}" if where else key
        if name is None:
            known = ", ".join(sorted(names))
            errors.append(f"{path}: unknown setting (known here: {known})")
            continue
        current = getattr(obj, name)
        if is_dataclass(current):
            changes[name] = _apply(current, value, path, errors)
        elif (checked := _check(path, name, hints[name], value, errors)) is not _INVALID:
            changes[name] = checked
    return replace(obj, **changes) if changes else obj


_INVALID = object()


def _check(path: str, name: str, hint: Any, value: Any, errors: list[str]) -> Any:
    if name == "providers":
        if value == "auto":
            return value
        if isinstance(value, list) and value and all(v in PROVIDERS for v in value):
            return list(value)
        errors.append(f"{path}: expected \"auto\" or a list of {', '.join(PROVIDERS)}; got {value!r}")
        return _INVALID
    if name == "store" and isinstance(value, str) and not is_database_url(value):
        errors.append(f"{path}: expected a postgresql:// URL or null; got {value!r}")
        return _INVALID
    if name in CHOICES and value not in CHOICES[name]:
        errors.append(f"{path}: expected one of {', '.join(map(repr, CHOICES[name]))}; got {value!r}")
        return _INVALID
    allowed = [t for t in (get_args(hint) if get_origin(hint) in (Union, type(int | None)) else (hint,))]
    if value is None and type(None) in allowed:
        return None
    for t in allowed:
        if t is bool and isinstance(value, bool):
            return value
        if t is int and isinstance(value, int) and not isinstance(value, bool):
            if value < 0:
                errors.append(f"{path}: must not be negative; got {value}")
                return _INVALID
            return value
        if t is str and isinstance(value, str):
            return value
    names = " or ".join("null" if t is type(None) else {"bool": "true/false", "int": "a whole number",
                                                          "str": "a string"}.get(t.__name__, t.__name__)
                        for t in allowed)
    errors.append(f"{path}: expected {names}; got {value!r}")
    return _INVALID


def camel_keys(obj: Any) -> dict:
    """The settings as the JSON an editor would send (for `plusls.settings`, docs and tests)."""
    if is_dataclass(obj):
        return {_camel(f.name): camel_keys(getattr(obj, f.name)) for f in fields(obj)}
    return obj
