"""The real `plusls serve` over stdio, driven by a pytest-lsp client: every method, and the bad days."""
from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fixture_repo import FILES, make_repo
from lsp_session import change, init_options, inline_params, open_doc, position_after, server_env, serving, wait_indexed
from lsprotocol import types as t
from plusls.exported.defaults import EMBEDDER
from pygls.exceptions import JsonRpcInternalError, JsonRpcMethodNotFound, JsonRpcRequestCancelled

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(300), pytest.mark.slow]  # spawns servers
MATH = FILES["src/mathutil.py"]
TYPED = MATH[: MATH.index("    a, b =") + len("    a, b =")]  # the user is typing fibonacci's body


@pytest.fixture
def workspace(tmp_path) -> Path:
    return make_repo(tmp_path / "ws")


async def stats(client) -> dict:
    return await client.workspace_execute_command_async(t.ExecuteCommandParams("plusls.stats"))


async def settled(client) -> dict:
    """The counters once background work (warming, summaries) has nothing left to do."""
    return await client.workspace_execute_command_async(t.ExecuteCommandParams("plusls.stats", [{"settled": True}]))


async def test_inline_completion_accept_and_fallback(workspace, tmp_path, exported, memorized):
    async with serving(workspace, tmp_path / "cache", init_options(exported, memorized)) as client:
        caps = client.init_result.capabilities
        assert caps.inline_completion_provider is not None and caps.completion_provider is not None
        assert caps.hover_provider and caps.code_action_provider.resolve_provider and caps.workspace_symbol_provider
        assert set(caps.execute_command_provider.commands) >= {"plusls.search", "plusls.reindex",
                                                               "plusls.acceptCompletion"}
        uri = open_doc(client, workspace / "src" / "mathutil.py", TYPED)
        end = position_after(TYPED, "    a, b =")
        result = await client.text_document_inline_completion_async(inline_params(uri, end.line, end.character))
        assert result is not None and len(result.items) == 1
        item = result.items[0]
        assert item.insert_text == " 0, 1"  # mid-line: one line, exactly what the memorized file has
        assert item.range == t.Range(end, end)
        assert "<|" not in item.insert_text
        # The editor runs the item's command when the user accepts: recorded locally with its context.
        recorded = await client.workspace_execute_command_async(
            t.ExecuteCommandParams(item.command.command, item.command.arguments))
        assert recorded == {"recorded": True}
        log = (tmp_path / "cache" / "plusls" / "telemetry" / "completions.jsonl").read_text().splitlines()
        entry = json.loads(log[-1])
        assert entry["accepted"] is True and entry["text"] == " 0, 1" and entry["prefix"].endswith("a, b =")

        # Clients without inline completion get the same text as a completion item replacing the typed word.
        partial = TYPED + " 0"
        change(client, uri, 2, partial)
        pos = position_after(partial, "a, b = 0")
        listed = await client.text_document_completion_async(t.CompletionParams(t.TextDocumentIdentifier(uri), pos))
        assert listed.items and listed.items[0].text_edit.new_text == "0, 1"
        assert listed.items[0].text_edit.range.start.character == pos.character - 1


async def test_an_opened_then_edited_document_is_read_ahead_while_the_user_pauses(workspace, tmp_path, exported,
                                                                               memorized):
    """didOpen and an incremental didChange warm the document's cache at the edit: the request after the pause
    runs only its newest tokens and suggests what it would have anyway."""
    async with serving(workspace, tmp_path / "cache", init_options(exported, memorized)) as client:
        head = TYPED[: TYPED.rindex("\n") + 1]
        uri = open_doc(client, workspace / "src" / "mathutil.py", head)
        opened = (await settled(client))["completion"]["warmed_tokens"]
        assert opened > 0
        line = TYPED[len(head) :]
        at = t.Position(head.count("\n"), 0)
        client.text_document_did_change(t.DidChangeTextDocumentParams(
            t.VersionedTextDocumentIdentifier(version=2, uri=uri),
            [t.TextDocumentContentChangePartial(range=t.Range(at, at), text=line)]))
        counters = (await settled(client))["completion"]
        assert counters["warmed_tokens"] > opened and counters["model_runs"] == 0
        end = position_after(TYPED, "    a, b =")
        result = await client.text_document_inline_completion_async(inline_params(uri, end.line, end.character))
        assert result.items[0].insert_text == " 0, 1"
        after = (await stats(client))["completion"]
        assert after["prompt_tokens"] - after["reused_tokens"] == 1  # all read ahead but the last, which always runs
        # A cursor resting elsewhere (VS Code asks for highlights on every move): none, and that spot is warmed.
        other = open_doc(client, workspace / "src" / "other.py", TYPED)
        assert await client.text_document_document_highlight_async(t.DocumentHighlightParams(
            t.TextDocumentIdentifier(other), t.Position(2, 4))) is None
        assert (await settled(client))["completion"]["warmed_tokens"] > after["warmed_tokens"]


async def test_multiline_at_an_empty_line_stops_at_the_scope(workspace, tmp_path, exported, memorized):
    async with serving(workspace, tmp_path / "cache", init_options(exported, memorized, maxNewTokens=64)) as client:
        text = MATH[: MATH.index("    a, b =")] + "    "
        uri = open_doc(client, workspace / "src" / "mathutil.py", text)
        end = position_after(text + "\x00", "    \x00")
        end = t.Position(end.line, 4)
        result = await client.text_document_inline_completion_async(inline_params(uri, end.line, end.character))
        got = result.items[0].insert_text
        assert got.startswith("a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a")
        assert "def is_prime" not in got  # the next top-level definition is outside the scope


async def test_superseded_and_cancelled_requests_never_run_the_model(workspace, tmp_path, exported, memorized):
    async with serving(workspace, tmp_path / "cache", init_options(exported, memorized, debounceMs=400)) as client:
        uri = open_doc(client, workspace / "src" / "mathutil.py", TYPED)
        end = position_after(TYPED, "    a, b =")
        await client.text_document_inline_completion_async(inline_params(uri, end.line, end.character - 3))
        before = (await stats(client))["completion"]
        # A burst of typing, requests back to back (other lines, so no cached answer): each one supersedes the one
        # before it while that one waits out the debounce, so the middle one never runs the model. The first may
        # run at once (a burst starts with it only if the request above was moments ago): every request ran the
        # model, was dropped before it, or was stopped by the next one (before the model thread took it up, or
        # between tokens).
        requests = [asyncio.ensure_future(client.text_document_inline_completion_async(inline_params(uri, *at)))
                    for at in ((1, 5), (0, 10), (end.line, end.character))]
        _, dropped, answered = await asyncio.gather(*requests)
        assert dropped is None
        assert answered.items[0].insert_text == " 0, 1"
        counters = (await stats(client))["completion"]
        ran, skipped, stopped = (counters[k] - before[k] for k in ("model_runs", "dropped", "cancelled"))
        assert ran + skipped + stopped >= 3 and skipped + stopped >= 1 and ran <= 2

        # $/cancelRequest while it waits out the debounce (a burst: it follows a request for the same document):
        # the client gets a cancellation error and the model does not run for it.
        await client.text_document_inline_completion_async(inline_params(uri, end.line, end.character))  # cached
        before = (await stats(client))["completion"]
        fut = client.protocol.send_request(t.TEXT_DOCUMENT_INLINE_COMPLETION,
                                           inline_params(uri, 1, 6), msg_id="cancel-me")
        client.protocol.notify("$/cancelRequest", t.CancelParams(id="cancel-me"))
        with pytest.raises(JsonRpcRequestCancelled):
            await asyncio.wait_for(asyncio.wrap_future(fut), 10)
        after = (await stats(client))["completion"]
        assert after["model_runs"] == before["model_runs"] and after["cancelled"] == before["cancelled"] + 1


async def test_hover_code_action_symbol_search_and_reindex_on_save(workspace, tmp_path, exported, memorized):
    async with serving(workspace, tmp_path / "cache", init_options(exported, memorized)) as client:
        await wait_indexed(client)
        reports = next(iter(client.progress_reports.values()))
        assert isinstance(reports[0], t.WorkDoneProgressBegin) and "indexing" in reports[0].title
        messages = [r.message for r in reports if isinstance(r, t.WorkDoneProgressReport)]
        firsts = [n for n, m in enumerate(messages) if m.startswith("first pass: ")]
        fulls = [n for n, m in enumerate(messages) if m.startswith("full pass: ")]
        assert firsts and fulls and max(firsts) < min(fulls)  # searchable first, then the encoder's vectors
        assert "searchable after" in reports[-1].message
        files = (workspace / "src" / "files.py").read_text()
        uri = open_doc(client, workspace / "src" / "files.py")
        pos = position_after(files, "with open(path")
        hover = await client.text_document_hover_async(t.HoverParams(t.TextDocumentIdentifier(uri), pos))
        assert "def read_text(path: str) -> str" in hover.contents.value
        assert "Return the whole contents of a text file." in hover.contents.value  # its own docstring
        again = await client.text_document_hover_async(t.HoverParams(t.TextDocumentIdentifier(uri), pos))
        assert again.contents.value == hover.contents.value

        # Generate docstring: offered for a function without one, resolved into an edit in Python's convention.
        math_uri = open_doc(client, workspace / "src" / "mathutil.py")
        at = position_after(MATH, "return n > 1")
        actions = await client.text_document_code_action_async(t.CodeActionParams(
            t.TextDocumentIdentifier(math_uri), t.Range(at, at), t.CodeActionContext(diagnostics=[])))
        assert [a.title for a in actions] == ["Generate docstring for is_prime"]
        action = actions[0] if actions[0].edit else await client.code_action_resolve_async(actions[0])
        (edit,) = action.edit.changes[math_uri]
        assert edit.range.start == t.Position(MATH.split("\n").index("def is_prime(n):") + 1, 0)
        assert edit.new_text.startswith('    """') and edit.new_text.endswith('"""\n')
        fib = position_after(MATH, "a, b = b")  # fibonacci has a docstring: nothing to offer
        assert not await client.text_document_code_action_async(t.CodeActionParams(
            t.TextDocumentIdentifier(math_uri), t.Range(fib, fib), t.CodeActionContext(diagnostics=[])))

        symbols = await client.workspace_symbol_async(t.WorkspaceSymbolParams(query="is_prime"))
        assert symbols[0].name == "is_prime" and symbols[0].kind == t.SymbolKind.Function
        assert symbols[0].location.uri == (workspace / "src" / "mathutil.py").as_uri()
        assert symbols[0].location.range.start.line == MATH.split("\n").index("def is_prime(n):")
        found = await client.workspace_execute_command_async(t.ExecuteCommandParams("plusls.search", ["is_prime", 3]))
        assert found[0]["path"] == "src/mathutil.py" and found[0]["name"] == "is_prime"
        assert all(".env" not in r["path"] for r in found)

        # Save a file with a new function: it is searchable right after didSave.
        new = workspace / "src" / "extra.py"
        new.write_text("def triple_value(x):\n    return 3 * x\n")
        client.text_document_did_save(t.DidSaveTextDocumentParams(t.TextDocumentIdentifier(new.as_uri())))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            symbols = await client.workspace_symbol_async(t.WorkspaceSymbolParams(query="triple_value"))
            if symbols and symbols[0].name == "triple_value":
                break
            await asyncio.sleep(0.1)
        assert symbols[0].name == "triple_value"
        summary = await client.workspace_execute_command_async(t.ExecuteCommandParams("plusls.reindex"))
        assert summary["filesIndexed"] == 0 and summary["filesUnchanged"] > 0  # nothing changed since


async def test_hover_summaries_are_made_in_the_background_before_anyone_hovers(workspace, tmp_path, exported,
                                                                             memorized):
    async with serving(workspace, tmp_path / "cache", init_options(exported, memorized)) as client:
        uri = open_doc(client, workspace / "src" / "mathutil.py", MATH)
        opened = await settled(client)
        assert opened["summaries_prefetched"] == opened["summaries"] == 2  # fibonacci and is_prime, unasked
        assert opened["summaries_pending"] == 0
        hover = await client.text_document_hover_async(
            t.HoverParams(t.TextDocumentIdentifier(uri), position_after(MATH, "return n > 1")))
        assert "def is_prime(n)" in hover.contents.value
        assert (await stats(client))["summaries"] == 2  # the hover was answered from the cache

        # A burst of keystrokes in is_prime: nothing is summarized until the user pauses, then only is_prime again.
        edited = MATH.replace("return n > 1", "return n >= 2")
        for version, typed in enumerate(("return n >", "return n >=", "return n >= 2"), start=2):
            change(client, uri, version, MATH.replace("return n > 1", typed))
        burst = await stats(client)
        assert burst["summaries_prefetched"] == 2 and burst["summaries_pending"] == 1  # waiting for a pause
        change(client, uri, 5, edited)
        after = await settled(client)
        assert after["summaries_prefetched"] == after["summaries"] == 3


async def test_bad_settings_unknown_methods_and_odd_documents(workspace, tmp_path, exported, memorized):
    options = init_options(exported, memorized)
    options["completion"]["debounceMs"] = "fast"
    options["colour"] = "blue"
    async with serving(workspace, tmp_path / "cache", options) as client:
        await stats(client)  # what the server said at initialize reached the client before this answer
        messages = [m.message for m in client.messages if m.type == t.MessageType.Error]
        assert any("completion.debounceMs" in m and "whole number" in m for m in messages), messages
        assert any("colour: unknown setting" in m for m in messages), messages
        current = (await stats(client))["settings"]
        assert current["completion"]["debounceMs"] == 60  # the previous (default) value is kept

        client.workspace_did_change_configuration(t.DidChangeConfigurationParams(
            settings={"plusls": {"completion": {"maxNewTokens": -3}, "hover": {"enabled": False}}}))
        await stats(client)  # handled in order: the settings notification first
        assert any("maxNewTokens: must not be negative" in m.message for m in client.messages)
        current = (await stats(client))["settings"]
        assert current["hover"]["enabled"] is False and current["completion"]["maxNewTokens"] == 48

        with pytest.raises(JsonRpcMethodNotFound):
            await client.protocol.send_request_async("plusls/doesNotExist", {})

        uri = open_doc(client, workspace / "src" / "mathutil.py", TYPED)
        far = await client.text_document_inline_completion_async(inline_params(uri, 9999, 9999))
        assert far.items[0].insert_text == " 0, 1"  # clamped to the end of the document
        huge = "x = 1\n" * 1_750_000 + TYPED  # 10.5 MB
        big_uri = open_doc(client, workspace / "src" / "huge.py", huge)
        end = position_after(TYPED, "    a, b =")
        got = await client.text_document_inline_completion_async(
            inline_params(big_uri, 1_750_000 + end.line, end.character))
        suggested = got.items[0].insert_text
        assert suggested.strip() and "\n" not in suggested  # a suggestion, one line: the cursor is mid-line
        binary = "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x10" * 50
        bin_uri = open_doc(client, workspace / "assets" / "logo.py", binary)
        await client.text_document_inline_completion_async(inline_params(bin_uri, 0, 5))
        odd = "def caf\udce9():\n    return 1\n"  # bytes a client could not decode, passed through as surrogates
        odd_uri = open_doc(client, workspace / "src" / "latin.py", odd)
        await client.text_document_inline_completion_async(inline_params(odd_uri, 1, 4))
        await client.text_document_hover_async(t.HoverParams(t.TextDocumentIdentifier(odd_uri), t.Position(1, 5)))
        # Still up and right after all of that.
        again = await client.text_document_inline_completion_async(inline_params(uri, end.line, end.character))
        assert again.items[0].insert_text == " 0, 1"


async def test_storm_of_changes_and_cancels_then_the_last_request_is_right(workspace, tmp_path, exported, memorized):
    async with serving(workspace, tmp_path / "cache", init_options(exported, memorized, debounceMs=5)) as client:
        uri = open_doc(client, workspace / "src" / "mathutil.py", "")
        pending = []
        for n in range(1, len(TYPED) + 1):  # typing the file character by character
            text = TYPED[:n]
            change(client, uri, n + 1, text)
            line, col = text.count("\n"), len(text) - (text.rfind("\n") + 1)
            fut = client.protocol.send_request(t.TEXT_DOCUMENT_INLINE_COMPLETION, inline_params(uri, line, col),
                                               msg_id=f"storm-{n}")
            pending.append(asyncio.wrap_future(fut))
            if n % 3 == 0:
                client.protocol.notify("$/cancelRequest", t.CancelParams(id=f"storm-{n}"))
        outcomes = await asyncio.gather(*pending, return_exceptions=True)
        last = outcomes[-1]
        assert not isinstance(last, Exception)
        assert last.items[0].insert_text == " 0, 1"
        counters = (await stats(client))["completion"]
        assert counters["dropped"] + counters["cancelled"] > 0
        assert counters["model_runs"] < len(TYPED)


def test_malformed_json_rpc_does_not_kill_the_server(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "plusls.cli", "serve"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=server_env(tmp_path))

    def send(body: bytes) -> None:
        proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        proc.stdin.flush()

    try:
        send(b"{this is not json")
        send(b'{"jsonrpc": "2.0", "id": 7, "method": "initialize", "params": {"capabilities": {}}}')
        reply: dict = {}
        while reply.get("id") != 7:  # the server may first say what went wrong (window/showMessage)
            length = 0
            header = proc.stdout.readline()
            while header.strip():
                if header.lower().startswith(b"content-length"):
                    length = int(header.split(b":")[1])
                header = proc.stdout.readline()
            reply = json.loads(proc.stdout.read(length))
        assert "capabilities" in reply["result"]
    finally:
        proc.kill()
        proc.wait()


async def test_busy_completions_do_not_delay_hover_and_a_swapped_model_is_picked_up(
        workspace, tmp_path, exported, memorized):
    model = tmp_path / "completion-model"
    shutil.copytree(exported["llama"], model)  # random weights: never stops before maxNewTokens
    options = init_options(exported, memorized, maxNewTokens=48)
    options["models"]["completion"] = str(model)
    async with serving(workspace, tmp_path / "cache", options) as client:
        uri = open_doc(client, workspace / "src" / "mathutil.py", MATH + "\n")
        hover_at = t.HoverParams(t.TextDocumentIdentifier(uri), position_after(MATH, "return n > 1"))
        await client.text_document_hover_async(hover_at)  # summary cached
        # Keep the completion thread busy: one request per document, so none supersedes another.
        busy = []
        for i in range(150):  # the tiny model answers one in a few ms: enough for a fast machine too
            doc = open_doc(client, workspace / "src" / f"busy{i}.py", f"def busy_{i}(x):\n    return x * {i}\n")
            busy.append(asyncio.ensure_future(client.text_document_inline_completion_async(inline_params(doc, 2, 0))))
        cached = await client.text_document_hover_async(hover_at)
        assert "def is_prime(n)" in cached.contents.value
        assert not busy[-1].done(), "the cached hover is answered while the completions still queue"
        await asyncio.gather(*busy)

        # `plusls train refresh` replaces the model directory in place: the next request uses the new model.
        staged = tmp_path / "staged"
        shutil.copytree(memorized, staged)
        shutil.rmtree(model)
        staged.rename(model)
        uri2 = open_doc(client, workspace / "src" / "typed.py", TYPED)
        end = position_after(TYPED, "    a, b =")
        got = await client.text_document_inline_completion_async(inline_params(uri2, end.line, end.character))
        assert got.items[0].insert_text == " 0, 1"


async def test_a_refreshed_embedder_is_picked_up_and_the_workspace_re_embedded(workspace, tmp_path, exported,
                                                                               memorized):
    from plusls.training.refresh import exchange

    model = tmp_path / "embedder"
    shutil.copytree(exported["bert"], model)
    options = init_options(exported, memorized)
    options["models"]["embedding"] = str(model)
    async with serving(workspace, tmp_path / "cache", options) as client:
        await wait_indexed(client)
        staged = tmp_path / "staged"
        shutil.copytree(exported["codet5p-embedding"], staged)  # other weights, another vector size
        exchange(staged, model)  # what `plusls train refresh` does once the new model measured better
        first = await client.workspace_symbol_async(t.WorkspaceSymbolParams(query="is_prime"))
        assert first[0].name == "is_prime"  # BM25 answers while the vectors are rebuilt
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(
                "embedding model changed" in m.message for m in client.messages):
            await asyncio.sleep(0.1)
        assert any("embedding model changed" in m.message and "rebuilding vectors" in m.message
                   for m in client.messages), [m.message for m in client.messages]
        found = await client.workspace_execute_command_async(t.ExecuteCommandParams("plusls.search", ["is_prime", 3]))
        assert found[0]["name"] == "is_prime"


async def test_a_missing_default_model_is_exported_in_the_background_with_progress(workspace, tmp_path, exported,
                                                                                    memorized):
    """No embedding model set and the default one not exported yet: the server exports it once as it starts, with
    a message and $/progress, never inside a request. Meanwhile search says why it cannot answer and completion
    goes on; then the workspace is indexed with the new model."""
    options = init_options(exported, memorized)
    del options["models"]["embedding"]
    async with serving(workspace, tmp_path / "cache", options) as client:
        with pytest.raises(JsonRpcInternalError, match="being exported"):
            await client.workspace_execute_command_async(t.ExecuteCommandParams("plusls.search", ["is_prime"]))
        uri = open_doc(client, workspace / "src" / "mathutil.py", TYPED)
        end = position_after(TYPED, "    a, b =")
        result = await client.text_document_inline_completion_async(inline_params(uri, end.line, end.character))
        assert result.items[0].insert_text == " 0, 1"
        await settled(client)
        found = await client.workspace_execute_command_async(t.ExecuteCommandParams("plusls.search", ["is_prime"]))
        assert found[0]["name"] == "is_prime"
    assert any(f"exporting the default models once ({EMBEDDER.name})" in m.message for m in client.messages)
    export = next(r for token, r in client.progress_reports.items() if "export" in str(token))
    assert isinstance(export[0], t.WorkDoneProgressBegin) and isinstance(export[-1], t.WorkDoneProgressEnd)
    assert (tmp_path / "cache" / "models" / EMBEDDER.name / "manifest.json").is_file()


async def test_auto_measures_the_default_completers_once_then_completes_with_its_choice(workspace, tmp_path,
                                                                                       exported, memorized):
    """models.completion "auto": the installed default completers (tiny stand-ins here, under their names) are
    measured after the server starts, the choice is logged once and reported, suggestions come from it, and the
    next start chooses from the kept speeds without measuring again."""
    from plusls.exported.defaults import installed_completers

    models = tmp_path / "models"
    for model in installed_completers():
        shutil.copytree(memorized, models / model.name)
    options = init_options(exported, memorized)
    options["models"].update(completion="auto", dir=str(models))
    cache = tmp_path / "cache"
    async with serving(workspace, cache, options) as client:
        report = (await settled(client))["completer"]
        largest = installed_completers()[0].name  # a tiny model is fast anywhere: the largest meets the budgets
        assert report["completer"] == largest and "budgets" in report["reason"]
        assert [c["name"] for c in report["candidates"]] == [m.name for m in installed_completers()]
        said = [m.message for m in client.log_messages if "completing with" in m.message]
        assert said == [f"plusls: completing with {largest}: {report['reason']}"]
        assert any("measuring completion speed" in str(r) for reports in client.progress_reports.values()
                   for r in reports)
        uri = open_doc(client, workspace / "src" / "mathutil.py", TYPED)
        end = position_after(TYPED, "    a, b =")
        result = await client.text_document_inline_completion_async(inline_params(uri, end.line, end.character))
        assert result.items[0].insert_text == " 0, 1"
    speeds = (cache / "plusls" / "completer-speed.json").read_text()
    async with serving(workspace, cache, options) as client:
        assert (await settled(client))["completer"]["completer"] == largest
        assert not any("measuring completion speed" in str(r) for reports in client.progress_reports.values()
                       for r in reports)
    assert (cache / "plusls" / "completer-speed.json").read_text() == speeds
