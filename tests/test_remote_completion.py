"""The remote backend's pieces that need no server: FIM templates, the text window, the outage policy, the key and
URL handling, and the settings that turn it on (the real llama-server runs in test_remote_llama_server.py)."""
from __future__ import annotations

import pytest

from plusls.completion.fim_templates import TEMPLATES
from plusls.completion.prompt import Cursor, WindowState, text_window
from plusls.common.http import base_url
from plusls.completion.remote import Health, InfillRequest, RemoteBackend, RemoteError
from plusls.completion.settings import RemoteSettings
from plusls.server.model_dirs import NONE, resolve_dirs
from plusls.server.settings import parse_settings


def test_each_family_puts_the_prefix_then_the_suffix_then_asks_for_the_middle():
    for name, template in TEMPLATES.items():
        prompt = template.render("def f(x):\n    return ", "\n\nprint(f(2))\n")
        assert prompt.index("return") < prompt.index("print") < prompt.index(template.middle.strip()), name
        assert prompt.endswith(template.middle) and template.middle.strip() in template.stop, name
    qwen = TEMPLATES["qwen2.5-coder"].render("a", "b")
    assert qwen == "<|fim_prefix|>a<|fim_suffix|>b<|fim_middle|>"


def test_the_text_window_keeps_its_start_while_the_user_types_and_moves_when_it_must():
    text = "".join(f"line_{i} = {i}\n" for i in range(200))
    state = WindowState()
    above, line, suffix = text_window(Cursor(text + "x = ", len(text) + 4), state, 600, 100)
    start = state.start
    assert text[start - 1] == "\n" and above == text[start:] and line == "x = " and suffix == ""
    assert len(above) <= 600
    typed = text + "x = line_1"
    assert text_window(Cursor(typed, len(typed)), state, 600, 100)[0] == above and state.start == start
    far = typed + "\n" + "y = 1\n" * 100
    moved = text_window(Cursor(far, len(far)), state, 600, 100)[0]
    assert state.start > start and len(moved) <= 600 and moved.endswith("y = 1\n")


def test_an_outage_is_said_once_and_retried_after_growing_pauses():
    now = [0.0]
    health = Health(lambda: now[0])
    assert health.ready()
    assert health.failed(RemoteError("down")) is True
    pauses = []
    for _ in range(8):
        pauses.append(health.retry_at - now[0])
        now[0] = health.retry_at
        assert health.ready() and health.failed(RemoteError("still down")) is False
    assert pauses == [1, 2, 4, 8, 16, 32, 60, 60]
    now[0] += 0.5
    assert not health.ready()
    assert health.failed(RemoteError("busy", retry_after=7)) is False and health.retry_at == now[0] + 7
    assert health.succeeded() is True and health.ready() and health.succeeded() is False


def test_the_key_comes_from_the_named_environment_variable(monkeypatch):
    monkeypatch.delenv("PLUSLS_TEST_KEY", raising=False)
    backend = RemoteBackend("https://gpu.example:8000/v1/", RemoteSettings(api_key_env="PLUSLS_TEST_KEY"))
    assert backend.url == "https://gpu.example:8000" == base_url("https://gpu.example:8000")
    with pytest.raises(RemoteError, match="PLUSLS_TEST_KEY is not set"):
        backend.headers()
    monkeypatch.setenv("PLUSLS_TEST_KEY", "s3cret")
    assert backend.headers() == {"Authorization": "Bearer s3cret"}
    assert RemoteBackend("http://h", RemoteSettings()).headers() == {}


def test_each_api_gets_its_own_body():
    request = InfillRequest("def f(x):\n", "    return ", "\n", header="# Similar code in a.py:\n", stop=("\n",))
    path, body = RemoteBackend("http://h", RemoteSettings(model="qwen", template="starcoder2")).body(request, 24, True)
    assert path == "/v1/completions" and body["model"] == "qwen" and body["stream"] and body["max_tokens"] == 24
    assert body["prompt"] == "<fim_prefix># Similar code in a.py:\ndef f(x):\n    return <fim_suffix>\n<fim_middle>"
    assert "\n" in body["stop"] and "<fim_prefix>" in body["stop"]
    path, body = RemoteBackend("http://h", RemoteSettings(api="infill")).body(request, 0, False)
    assert path == "/infill" and body["n_predict"] == 0 and body["cache_prompt"]
    assert (body["input_prefix"], body["prompt"], body["input_suffix"]) == ("def f(x):\n", "    return ", "\n")


def test_a_url_turns_the_server_on_with_the_chosen_stand_in():
    settings, errors = parse_settings({"models": {"completion": "http://gpu:8080"}, "remote": {"api": "infill"}})
    assert not errors and settings.remote.api == "infill"
    dirs = resolve_dirs(settings)
    assert dirs.remote == "http://gpu:8080" and dirs.completion is None and dirs.completer == "auto" and dirs.local()
    settings, _ = parse_settings({"remote": {"fallback": None}}, settings)
    assert resolve_dirs(settings).completer == NONE and not resolve_dirs(settings).local()
    settings, _ = parse_settings({"remote": {"fallback": "/models/mine"}}, settings)
    assert str(resolve_dirs(settings).completion) == "/models/mine"
    _, errors = parse_settings({"remote": {"api": "grpc", "template": "gpt"}, "search": {"store": "mysql://db"}})
    assert len(errors) == 3 and "openai" in errors[0] and "qwen2.5-coder" in errors[1] and "postgresql" in errors[2]
