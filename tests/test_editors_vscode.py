"""The editor setups in editors/: the VS Code extension's settings mirror the server's, its commands are the documented
ones, it compiles (npm ci + tsc in a temporary copy, when npm is on PATH), and, run with a stand-in for the VS Code API,
it drives a fake server over stdio the way the real one will be driven; Helix and the README use the same settings."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from plusls.server.settings import Settings, camel_keys

pytestmark = pytest.mark.slow  # compiles the extension, spawns a server


ROOT = Path(__file__).resolve().parents[1]
EXT = ROOT / "editors" / "vscode"

# The server's own settings (initializationOptions / workspace/didChangeConfiguration section "plusls").
DOCUMENTED_SETTINGS = camel_keys(Settings())
CLIENT_ONLY_SETTINGS = {"serverPath": "plusls", "trace.server": "off"}
EXTENSION_COMMANDS = {"plusls.searchWorkspace": "Search workspace", "plusls.reindexWorkspace": "Reindex",
                      "plusls.restartServer": "Restart server"}
SERVER_COMMANDS = {"plusls.search", "plusls.reindex", "plusls.acceptCompletion"}
LANGUAGES = ["python", "javascript", "typescript", "go", "rust", "java"]
NETWORK_ERRORS = ("ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "ENETUNREACH")


def flatten(obj: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in obj.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads((EXT / "package.json").read_text())


@pytest.fixture(scope="module")
def settings_source() -> str:
    return (EXT / "src" / "settings.ts").read_text()


def contributed(manifest: dict) -> dict:
    props = manifest["contributes"]["configuration"]["properties"]
    assert all(k.startswith("plusls.") for k in props)
    return {k.removeprefix("plusls."): v for k, v in props.items()}


def test_configuration_mirrors_the_server_settings(manifest):
    props = contributed(manifest)
    documented = flatten(DOCUMENTED_SETTINGS)
    assert set(props) == set(documented) | set(CLIENT_ONLY_SETTINGS)
    for key, default in {**documented, **CLIENT_ONLY_SETTINGS}.items():
        assert props[key]["default"] == default, key
    for key, default in documented.items():
        schema = props[key]
        types = schema["type"] if "type" in schema else [t["type"] for t in schema["anyOf"]]
        types = types if isinstance(types, list) else [types]
        expected = {bool: "boolean", int: "integer", str: "string", type(None): "null"}[type(default)]
        assert expected in types, (key, types)
    providers = props["providers"]["anyOf"]
    assert {"type": "string", "enum": ["auto"]} in providers
    items = next(p for p in providers if p["type"] == "array")["items"]
    assert items["enum"] == ["CUDAExecutionProvider", "CPUExecutionProvider"]


def test_the_extension_sends_exactly_the_server_keys(manifest, settings_source):
    block = re.search(r"SERVER_SETTING_KEYS = \[(.*?)\] as const", settings_source, re.S).group(1)
    assert re.findall(r"'([^']+)'", block) == list(flatten(DOCUMENTED_SETTINGS))
    block = re.search(r"CLIENT_SETTING_KEYS = \[(.*?)\] as const", settings_source, re.S).group(1)
    assert set(re.findall(r"'([^']+)'", block)) == set(CLIENT_ONLY_SETTINGS)


def test_commands_and_activation(manifest, settings_source):
    commands = {c["command"]: c for c in manifest["contributes"]["commands"]}
    assert {k: c["title"] for k, c in commands.items()} == EXTENSION_COMMANDS
    assert all(c["category"] == "plusls" for c in commands.values())  # shown as "plusls: Search workspace"
    # vscode-languageclient registers the server's executeCommand ids as VS Code commands itself.
    assert not set(commands) & SERVER_COMMANDS
    for command in set(commands) | SERVER_COMMANDS:
        assert f"'{command}'" in settings_source, command
    assert manifest["activationEvents"] == [f"onLanguage:{lang}" for lang in LANGUAGES]
    assert re.findall(r"'(\w+)'", re.search(r"LANGUAGES = \[(.*?)\]", settings_source).group(1)) == LANGUAGES
    assert manifest["main"] == "./out/extension.js"
    assert "vscode" in manifest["engines"]
    assert int(manifest["dependencies"]["vscode-languageclient"].lstrip("^~").split(".")[0]) >= 9
    source = (EXT / "src" / "extension.ts").read_text()
    assert "registerProposedFeatures()" in source
    assert re.search(r"args: \['serve'\]", source)


def test_lockfile_committed_and_build_outputs_ignored():
    lock = json.loads((EXT / "package-lock.json").read_text())
    assert lock["packages"][""]["dependencies"] == json.loads((EXT / "package.json").read_text())["dependencies"]
    ignored = (EXT / ".gitignore").read_text().split()
    assert "node_modules/" in ignored and "out/" in ignored


def _run(cmd: list[str], cwd: Path, timeout: int) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> Path:
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        pytest.skip("npm/node not on PATH: the VS Code extension's compile check needs Node.js")
    work = tmp_path_factory.mktemp("vscode") / "vscode"
    shutil.copytree(EXT, work, ignore=shutil.ignore_patterns("node_modules", "out", "*.vsix"))
    ci = _run([npm, "ci", "--no-audit", "--no-fund", "--prefer-offline"], work, 240)
    if ci.returncode != 0 and any(e in ci.stdout + ci.stderr for e in NETWORK_ERRORS):
        pytest.skip(f"npm ci could not reach the registry: {(ci.stderr or ci.stdout).strip()[-300:]}")
    assert ci.returncode == 0, ci.stdout + ci.stderr
    build = _run([npm, "run", "compile"], work, 240)
    assert build.returncode == 0, build.stdout + build.stderr
    return work


def test_extension_compiles(compiled):
    assert (compiled / "out" / "extension.js").stat().st_size > 0
    assert (compiled / "out" / "settings.js").exists()


# Loads out/extension.js with a stand-in `vscode` module (every property is a callable, constructible stub): proves the
# compiled code and vscode-languageclient/node resolve at run time, then prints what the extension would send as
# settings when every key has its package.json default.
LOAD_JS = r"""
const Module = require('module');
function stub(name) {
  const f = function () {};
  return new Proxy(f, {
    get(t, p) { return p === 'prototype' ? t.prototype : p === 'then' ? undefined : stub(name + '.' + String(p)); },
    apply() { return stub(name + '()'); },
    construct() { return stub('new ' + name); },
  });
}
const load = Module._load;
Module._load = function (request) { return request === 'vscode' ? stub('vscode') : load.apply(this, arguments); };
const ext = require('./out/extension.js');
for (const name of ['activate', 'deactivate']) if (typeof ext[name] !== 'function') throw new Error('no ' + name);
const props = require('./package.json').contributes.configuration.properties;
const settings = require('./out/settings.js');
console.log(JSON.stringify(settings.nestSettings((key) => props['plusls.' + key].default)));
"""


def test_extension_loads_and_sends_the_documented_defaults(compiled):
    out = _run(["node", "-e", LOAD_JS], compiled, 60)
    assert out.returncode == 0, out.stdout + out.stderr
    sent = json.loads(out.stdout.strip().splitlines()[-1])
    assert sent == DOCUMENTED_SETTINGS
    try:
        from plusls.server.settings import parse_settings
    except ImportError:
        return  # the server's settings parser is not there (yet): the documented schema above is the contract
    _, errors = parse_settings(sent)
    assert errors == []


def test_other_editors_use_the_same_settings():
    import tomllib

    helix = tomllib.loads((ROOT / "editors" / "helix" / "languages.toml").read_text())
    assert helix["language-server"]["plusls"]["args"] == ["serve"]
    assert set(flatten(helix["language-server"]["plusls"]["config"])) <= set(flatten(DOCUMENTED_SETTINGS))
    assert [lang["name"] for lang in helix["language"]] == LANGUAGES
    readme = (ROOT / "editors" / "README.md").read_text()
    block = re.search(r"```json\n(.*?)```", readme, re.S).group(1)
    assert json.loads(block) == DOCUMENTED_SETTINGS


# A stand-in for `plusls serve` (pygls): logs what the client sends, answers inline completion and the commands.
FAKE_SERVER = r'''
import json, sys
from lsprotocol import types
from pygls.lsp.server import LanguageServer

assert sys.argv[2:] == ["serve"], sys.argv
log = open(sys.argv[1], "a")
def record(kind, data):
    log.write(json.dumps({"kind": kind, "data": data}) + "\n"); log.flush()

server = LanguageServer("plusls", "0-fake")

@server.feature(types.INITIALIZE)
def initialize(ls, params):
    record("initializationOptions", params.initialization_options)

@server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
def did_change_configuration(ls, params):
    record("didChangeConfiguration", params.settings)

@server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
def inline_completion(ls, params):
    return [types.InlineCompletionItem(insert_text="return a + b", command=types.Command(
        title="plusls", command="plusls.acceptCompletion", arguments=[{"id": "c1", "accepted": True}]))]

@server.command("plusls.search")
def search(ls, *args):
    record("plusls.search", list(args))
    return [{"path": "a.py", "startLine": 1, "endLine": 2, "name": "add", "score": 0.9,
             "snippet": "def add(a, b):\n    return a + b"}]

@server.command("plusls.reindex")
def reindex(ls, *args):
    record("plusls.reindex", list(args))

@server.command("plusls.acceptCompletion")
def accept(ls, *args):
    record("plusls.acceptCompletion", list(args))

server.start_io()
'''


def test_extension_drives_a_server(compiled, tmp_path):
    """test/smoke.js runs the compiled extension and the real vscode-languageclient against a fake server."""
    pytest.importorskip("pygls.lsp.server", reason="pygls is needed for the fake server")

    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "a.py").write_text("def add(a, b):\n    return a + b\n")
    (tmp_path / "fake_server.py").write_text(FAKE_SERVER)
    log = tmp_path / "log.jsonl"
    launcher = tmp_path / "plusls"
    launcher.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{tmp_path / "fake_server.py"}" "{log}" "$@"\n')
    launcher.chmod(0o755)

    out = _run(["node", "test/smoke.js", str(launcher), str(workspace)], compiled, 60)
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    records = [json.loads(line) for line in log.read_text().splitlines()]

    assert set(report["commands"]) == set(EXTENSION_COMMANDS) | SERVER_COMMANDS  # the client added the server's
    assert report["inlineRegistered"]
    assert report["inlineItems"][0]["command"]["command"] == "plusls.acceptCompletion"
    assert report["quickPick"][0]["label"] == "add" and report["quickPick"][0]["description"].startswith("a.py:1")
    assert report["opened"]["path"] == str(workspace / "a.py")
    assert report["opened"]["revealed"]["start"]["line"] == 0 and report["opened"]["revealed"]["end"]["line"] == 1
    assert not [m for m in report["messages"] if m[0] in ("error", "warning")], report["messages"]

    sent = {}
    for r in records:
        sent.setdefault(r["kind"], []).append(r["data"])
    assert sent["initializationOptions"] == [DOCUMENTED_SETTINGS]
    changed = dict(DOCUMENTED_SETTINGS, completion=dict(DOCUMENTED_SETTINGS["completion"], debounceMs=90))
    payloads = sent["didChangeConfiguration"]  # once when the server is up, once for the change
    assert len(payloads) == 2 and {"plusls": DOCUMENTED_SETTINGS} in payloads and {"plusls": changed} in payloads
    assert sent["plusls.acceptCompletion"] == [[{"id": "c1", "accepted": True}]]
    assert sent["plusls.search"] == [["add two numbers", 20]]
    assert sent["plusls.reindex"] == [[]]
