"""A shared inference server's answers: OpenAI-compatible `/v1/completions` with the FIM prompt rendered here
(fim_templates.py), or llama-server's `/infill` (retrieved snippets as `input_extra`, `cache_prompt`); chat turns
through `/v1/chat/completions`. Suggestions stream, so a superseded one is dropped by closing its stream. One
health state per server: an outage is reported once, then retried with growing pauses."""
from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import AsyncIterator, Callable

import httpx

from plusls.common.errors import PluslsError
from plusls.common.http import base_url, bearer

from .fim_templates import TEMPLATES
from .prompt import Snippet
from .settings import RemoteSettings

CONNECT_TIMEOUT_S = 3.0
MAX_PAUSE_S = 60.0
API_KINDS = ("openai", "infill")


class RemoteError(PluslsError):
    """The server did not answer: `reason` says why and what to do; `retry_after` is its own pause, if it named one."""

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.retry_after = retry_after


@dataclass
class InfillRequest:
    """One suggestion's prompt in the layout of prompt.py, as text: `above` the cursor's line, the `line` up to the
    cursor, the `suffix`, and snippets from other files."""
    above: str
    line: str
    suffix: str
    snippets: list[Snippet] = field(default_factory=list)
    header: str = ""  # the snippets as comments, for servers that take one prompt string
    max_tokens: int = 48
    stop: tuple[str, ...] = ()
    deadline_ms: int = 2000  # for generating, once the prompt is read

    def key(self) -> str:
        return json.dumps([self.header, self.above, self.line, self.suffix, self.max_tokens, self.stop,
                           [(s.path, s.text) for s in self.snippets]])


class Health:
    """Whether to ask the server now: after a failure, not until a pause has passed (1 s, doubling to a minute, or
    the server's own Retry-After). `failed` and `succeeded` return True on a change the user should hear about."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.failures = 0
        self.retry_at = 0.0
        self.down: str | None = None

    def ready(self) -> bool:
        return self.clock() >= self.retry_at

    def failed(self, error: RemoteError) -> bool:
        self.failures += 1
        pause = error.retry_after if error.retry_after is not None else min(MAX_PAUSE_S, 2.0 ** (self.failures - 1))
        self.retry_at = self.clock() + pause
        first, self.down = self.down is None, str(error)
        return first

    def succeeded(self) -> bool:
        was_down, self.down, self.failures, self.retry_at = self.down is not None, None, 0, 0.0
        return was_down


class RemoteBackend:
    def __init__(self, url: str, settings: RemoteSettings):
        if settings.api not in API_KINDS:
            raise PluslsError(f"plusls.remote.api: expected one of {', '.join(API_KINDS)}; got {settings.api!r}")
        if settings.template not in TEMPLATES:
            raise PluslsError(f"plusls.remote.template: expected one of {', '.join(TEMPLATES)}; got "
                              f"{settings.template!r}")
        self.url, self.settings = base_url(url), settings
        self.template = TEMPLATES[settings.template]
        self.health = Health()
        timeout = httpx.Timeout(settings.timeout_ms / 1000, connect=min(CONNECT_TIMEOUT_S, settings.timeout_ms / 1000))
        options = dict(base_url=self.url, timeout=timeout, verify=settings.verify_tls, trust_env=False)
        self._async_options = options
        self._async: httpx.AsyncClient | None = None  # made on the event loop that uses it
        self.client = httpx.Client(**options)  # warm-ups and chat turns, from worker threads

    def headers(self) -> dict[str, str]:
        try:
            return bearer(self.settings.api_key_env, "plusls.remote.apiKeyEnv")
        except PluslsError as e:
            raise RemoteError(str(e)) from None

    def body(self, request: InfillRequest, max_tokens: int, stream: bool) -> tuple[str, dict]:
        """The endpoint and JSON body for `request`."""
        if self.settings.api == "infill":
            return "/infill", {
                "input_prefix": request.above, "input_suffix": request.suffix, "prompt": request.line,
                "input_extra": [{"filename": s.path, "text": s.text} for s in request.snippets],
                "n_predict": max_tokens, "stop": list(request.stop), "cache_prompt": True, "stream": stream,
                "temperature": 0.0, "t_max_predict_ms": request.deadline_ms}
        prompt = self.template.render(request.header + request.above + request.line, request.suffix)
        body = {"prompt": prompt, "max_tokens": max_tokens, "temperature": 0.0, "stream": stream,
                "stop": list(self.template.stop + request.stop)}
        if self.settings.model:
            body["model"] = self.settings.model
        return "/v1/completions", body

    async def stream(self, request: InfillRequest) -> AsyncIterator[str]:
        """The suggestion's text as it arrives. Leaving the loop early closes the stream, which stops the server."""
        path, body = self.body(request, request.max_tokens, stream=True)
        client = self._async_client()
        try:
            async with client.stream("POST", path, json=body, headers=self.headers()) as response:
                if response.status_code != 200:
                    await response.aread()
                    raise self._refused(response)
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        return
                    piece, done = _piece(json.loads(data))
                    if piece:
                        yield piece
                    if done:
                        return
        except httpx.HTTPError as e:
            raise self._unreachable(e) from e

    def warm(self, request: InfillRequest) -> None:
        """Read the prompt into the server's cache while the user reads (llama.vim's warm-up: nothing generated)."""
        path, body = self.body(request, 0 if self.settings.api == "infill" else 1, stream=False)
        self._post(path, body)

    def chat(self, messages: list[dict[str, str]], max_tokens: int, stop: tuple[str, ...]) -> str:
        body: dict = {"messages": messages, "max_tokens": max_tokens, "temperature": 0.0, "stop": list(stop)}
        if self.settings.model:
            body["model"] = self.settings.model
        return self._post("/v1/chat/completions", body)["choices"][0]["message"]["content"] or ""

    def close(self) -> None:
        self.client.close()
        if self._async is not None:
            try:
                asyncio.get_running_loop().create_task(self._async.aclose())
            except RuntimeError:  # no loop running here: the process is ending
                pass

    def _post(self, path: str, body: dict) -> dict:
        try:
            response = self.client.post(path, json=body, headers=self.headers())
        except httpx.HTTPError as e:
            raise self._unreachable(e) from e
        if response.status_code != 200:
            raise self._refused(response)
        return response.json()

    def _async_client(self) -> httpx.AsyncClient:
        if self._async is None:
            self._async = httpx.AsyncClient(**self._async_options)
        return self._async

    def _unreachable(self, error: httpx.HTTPError) -> RemoteError:
        if isinstance(error, httpx.TimeoutException):
            return RemoteError(f"{self.url} did not answer within {self.settings.timeout_ms} ms "
                               "(plusls.remote.timeoutMs)")
        return RemoteError(f"cannot reach {self.url} ({type(error).__name__}: {error or 'connection closed'}): is "
                           "the server running and the URL in plusls.models.completion right?")

    def _refused(self, response: httpx.Response) -> RemoteError:
        status, said = response.status_code, _error_text(response)
        if status in (401, 403):
            where = f"the key in ${self.settings.api_key_env}" if self.settings.api_key_env else \
                "plusls.remote.apiKeyEnv (no key is sent)"
            return RemoteError(f"{self.url} refused the API key (HTTP {status}{said}): check {where}")
        if status == 429:
            after = response.headers.get("retry-after", "")
            return RemoteError(f"{self.url} is busy (HTTP 429{said})",
                               float(after) if after.replace(".", "", 1).isdigit() else None)
        if status >= 500:
            return RemoteError(f"{self.url} failed (HTTP {status}{said})")
        return RemoteError(f"{self.url} rejected the request (HTTP {status}{said}): check plusls.remote.api, "
                           ".model and .template against what the server runs")


def _piece(data: dict) -> tuple[str, bool]:
    """(text, finished) from one streamed event: OpenAI's choices[0].text, or llama-server's content/stop."""
    if "choices" in data:
        choice = data["choices"][0] if data["choices"] else {}
        return choice.get("text") or "", choice.get("finish_reason") is not None
    return data.get("content") or "", bool(data.get("stop"))


def _error_text(response: httpx.Response) -> str:
    try:
        error = response.json().get("error")
        message = error.get("message") if isinstance(error, dict) else error
    except (ValueError, AttributeError):
        message = response.text
    message = " ".join(str(message or "").split())[:200]
    return f": {message}" if message else ""
