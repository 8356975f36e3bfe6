"""What produces the completions: an exported model directory, or a named baseline (pseudo-model).

Every generator answers a batch of Requests with Generated records that carry latency and token counts.
"""
from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, Sequence

from plusls.common.paths import default_models_dir
from plusls.common.text import identifier_words
from plusls.completion.line_choice import line_score, rival_wins
from plusls.docstrings.chat_summary import ChatSummarizer
from plusls.exported import CausalLM, GenerationConfig, ModelDirError, Seq2SeqLM, read_manifest
from plusls.exported.defaults import COMPLETER, bundled_docstring_dir, ensure_default
from plusls.indexer.embedding_model import load_embedder
from plusls.indexer.progress_bar import ProgressBar

from .errors import EvalError

BASELINES = {
    "baseline:reference": "returns the benchmark's own reference solution (checks the harness: expect 100%)",
    "baseline:identifier-words": "summarize only: the function name split into words ('get_user_name' -> "
                                 "'Get user name.')",
}


@dataclass
class Request:
    text: str = ""  # the prompt (or the code, for summarize)
    ids: list[int] | None = None  # a prompt given as token ids (fill-in-the-middle)
    reference: str | None = None  # what baseline:reference answers
    stops: tuple[str, ...] = ()
    explain: bool = False  # hover: a chat model explains the code in 1-3 sentences (one-line writers summarize)
    # The prefix-only prompt whose first line replaces this FIM one's where the model is surer of it (line choice).
    rival: "Request | None" = None


@dataclass
class Generated:
    text: str
    new_tokens: int = 0
    prompt_tokens: int = 0
    latency_s: float = 0.0  # the whole generate call (shared by a batch)
    first_token_s: float = 0.0
    finish_reason: str = ""
    prompt_truncated: bool = False  # the prompt was longer than the model's context and lost its start
    score: float | None = None  # the first line's mean log-probability, where the generation recorded them
    # In choice mode (line_choice.py): {"line_choice": "fim" (no rival: not a line start with code below),
    # "fim-over-rival" or "rival", and where a rival ran both lines and scores}, copied into the sample's record.
    line_choice: dict[str, Any] = field(default_factory=dict)


class Generator(Protocol):
    name: str
    kind: str  # "causal-lm", "seq2seq" or "baseline"

    def describe(self) -> dict[str, Any]: ...

    def generate(self, requests: Sequence[Request], config: GenerationConfig) -> list[Generated]: ...


class _Baseline:
    name: str
    kind = "baseline"

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "what": BASELINES[self.name]}


class ReferenceBaseline(_Baseline):
    name = "baseline:reference"

    def generate(self, requests: Sequence[Request], config: GenerationConfig) -> list[Generated]:
        if any(r.reference is None for r in requests):
            raise EvalError("baseline:reference needs a reference solution, and this task has none")
        return [Generated(r.reference or "", finish_reason="reference") for r in requests]


def identifier_summary(code: str) -> str:
    """'def get_user_name(...)' -> 'Get user name.': the server's fallback summary of the first definition's name."""
    m = re.search(r"\bdef\s+([A-Za-z_]\w*)", code) or re.search(r"\bclass\s+([A-Za-z_]\w*)", code)
    return identifier_words(m.group(1)) if m else ""


class IdentifierBaseline(_Baseline):
    name = "baseline:identifier-words"

    def generate(self, requests: Sequence[Request], config: GenerationConfig) -> list[Generated]:
        return [Generated(identifier_summary(r.text), finish_reason="baseline") for r in requests]


@dataclass
class ModelGenerator:
    """An exported causal LM or seq2seq model directory, run through plusls.exported."""

    directory: Path
    kind: str
    name: str = ""
    model: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        # The runtime stops at the model's stop tokens (exported.special_tokens), as it does for the server.
        self.model = (CausalLM if self.kind == "causal-lm" else Seq2SeqLM)(self.directory)
        self.name = self.name or self.directory.name

    @property
    def manifest(self):
        return self.model.manifest

    def has_token(self, token: str) -> bool:
        return self.model.tokenizer.token_to_id(token) is not None

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "dir": str(self.directory),
                "providers": self.model.providers, "manifest": asdict(self.manifest)}

    def generate(self, requests: Sequence[Request], config: GenerationConfig) -> list[Generated]:
        if any(r.rival is not None for r in requests):
            return [self._choose_line(r, config) for r in requests]
        config = replace(config, stop=tuple(dict.fromkeys((*config.stop, *requests[0].stops))))
        if self.kind == "seq2seq":  # the runtime truncates the encoder input itself
            outs = self.model.generate([r.text for r in requests], config)
            cut_prompt = [False] * len(requests)
        else:
            # A prompt longer than the model's context keeps its end, where the completion continues.
            budget = self.prompt_budget(config.max_new_tokens)
            prompts = [r.ids if r.ids is not None else self.model.encode(r.text) for r in requests]
            cut_prompt = [len(p) > budget for p in prompts]
            outs = self.model.generate_ids([p[-budget:] for p in prompts], config)
        return [Generated(g.text, len(g.token_ids), g.prompt_tokens, g.total_s, g.first_token_s, g.finish_reason,
                          cut_left, score=line_score(g.token_ids, g.logprobs, self.model.tokenizer))
                for g, cut_left in zip(outs, cut_prompt)]

    def _choose_line(self, request: Request, config: GenerationConfig) -> Generated:
        """The server's choice (line_choice.py): the FIM answer, or its prefix-only rival's first line where the
        model is surer of it."""
        fim = self.generate([replace(request, rival=None)], replace(config, logprobs=True))[0]
        if request.rival is None:
            return replace(fim, line_choice={"line_choice": "fim"})
        rival = self.generate([request.rival], replace(config, logprobs=True, stop=()))[0]
        both = {"fim_score": fim.score, "rival_score": rival.score, "fim_completion": fim.text,
                "rival_completion": rival.text}
        wins = rival_wins(fim.text, fim.score, rival.text, rival.score)
        shown, choice = (rival, "rival") if wins else (fim, "fim-over-rival")
        return replace(shown, latency_s=fim.latency_s + rival.latency_s, line_choice={"line_choice": choice, **both})

    def prompt_budget(self, max_new_tokens: int) -> int:
        """Prompt tokens that fit in the model's context beside max_new_tokens."""
        return max(1, self.manifest.max_length - max_new_tokens)


class ChatSummaries:
    """summarize with an instruct causal LM in chat form: the server's prompt, which also labels the distillation
    data (server.docs.chat_summary)."""

    kind = "causal-lm chat"

    def __init__(self, directory: Path):
        try:
            self.teacher = ChatSummarizer(directory)
        except ModelDirError as e:
            raise EvalError(f"--model {directory} holds a causal-lm model without a chat template; summarize needs "
                            "a seq2seq model, or a causal-lm with a chat template (asked in chat form)") from e
        self.name = f"{directory.name} (chat)"

    @property
    def manifest(self):
        return self.teacher.lm.manifest

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "providers": self.teacher.lm.providers}

    def generate(self, requests: Sequence[Request], config: GenerationConfig) -> list[Generated]:
        out = []
        for r in requests:
            start = time.perf_counter()
            text = self.teacher.explain(r.text) if r.explain else self.teacher.summarize(r.text)
            out.append(Generated(text, latency_s=time.perf_counter() - start,
                                 finish_reason="chat"))
        return out


def resolve(model: str | None, need: str, task: str, default_dir: Path | None = None) -> Generator:
    """The generator for --model: a baseline name, a model directory of the kind the task needs, or the default."""
    if need == "embedding":
        if model is not None and model.startswith("baseline:"):
            raise EvalError(f"{task} ranks with an embedding model; baselines do not apply")
        return EmbeddingModel(None if model is None else Path(model), default_dir or default_models_dir())
    if model in BASELINES:
        if model == "baseline:identifier-words" and need != "seq2seq":
            raise EvalError(f"baseline:identifier-words writes summaries; {task} needs code")
        return ReferenceBaseline() if model == "baseline:reference" else IdentifierBaseline()
    if model is None or model.startswith("baseline:"):
        if model is not None:
            raise EvalError(f"unknown baseline {model!r}; known: {', '.join(BASELINES)}")
        if need == "seq2seq":  # the docstring model the server uses
            bundled = bundled_docstring_dir()
            if bundled is None:
                raise EvalError(f"{task} needs --model DIR (an exported seq2seq model) or --model "
                                "baseline:identifier-words; this build of plusls has no bundled docstring model")
            return ModelGenerator(bundled, need)

        return ModelGenerator(ensure_default(COMPLETER, default_dir or default_models_dir(), log=_log), need)
    if model == "completer":
        model = str(ensure_default(COMPLETER, default_dir or default_models_dir(), log=_log))

    path = Path(model)
    try:
        manifest = read_manifest(path, verify=False)
    except ModelDirError as e:
        raise EvalError(f"--model {model}: {e}") from e
    if need == "seq2seq" and manifest.kind == "causal-lm":  # an instruct model summarizes in chat form
        return ChatSummaries(path)
    if manifest.kind != need:
        raise EvalError(f"--model {model} holds a {manifest.kind} model; {task} needs a {need} model")
    return ModelGenerator(path, need)


class EmbeddingModel:
    """An exported embedding model directory (default: the embedded MiniLM) for the search task."""

    kind = "embedding"

    def __init__(self, directory: Path | None, models_dir: Path):
        try:
            self.embedder, self.model_id = load_embedder(directory, models_dir, log=_log)
        except ModelDirError as e:
            raise EvalError(f"--model {directory}: {e}") from e
        self.name = self.model_id
        self.progress = ProgressBar()

    @property
    def manifest(self):
        return self.embedder.manifest

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "providers": self.embedder.providers,
                "manifest": asdict(self.embedder.manifest)}


def _log(message: str) -> None:
    import sys

    print(f"plusls eval: {message}", file=sys.stderr)
