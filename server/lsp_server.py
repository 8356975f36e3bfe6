"""The pygls language server. Each handler: read the document -> call a domain function -> return LSP types.

Model calls run on worker threads (completion, docs, index, queries each have their own) so the event loop keeps
handling didChange, cancellation and hover while a model works.
"""
from __future__ import annotations

import asyncio
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from lsprotocol import types as t
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path

from plusls.common.errors import PluslsError
from plusls.common.text import as_sentence, identifier_words
from plusls.completion.completer import Completer
from plusls.completion.remote import RemoteBackend
from plusls.completion.remote_completer import RemoteCompleter
from plusls.completion.prompt import Cursor
from plusls.completion.suggestion_cache import Suggestion
from plusls.docstrings.chat_summary import ChatWriter
from plusls.docstrings.definition_at import Definition, definition_at, definitions_in
from plusls.docstrings.docstring_style import docstring_insertion
from plusls.docstrings.explanation import what_it_returns
from plusls.docstrings.summarizer import EncoderDecoderWriter, Summarizer
from plusls.exported.causal_lm import CausalLM
from plusls.exported.defaults import DefaultModel
from plusls.exported.seq2seq_lm import Seq2SeqLM
from plusls.exported.watched_model import WatchedModel
from plusls.indexer.embedding_model import load_embedder
from plusls.indexer.languages import spec_for
from plusls.indexer.query_likelihood import QueryLikelihood
from plusls.indexer.remote_embedder import RemoteEmbedder
from plusls.indexer.workspace_index import IndexProgress

from .background import BackgroundQueue, Job
from .model_dirs import DefaultModels, docstring_dir, resolve_dirs, runtime_options
from .model_thread import ModelThread
from .prefetch import SummaryPrefetch
from .progress import WorkProgress
from .scheduler import WARM_KEY, RequestScheduler
from .settings import Settings, camel_keys, parse_settings
from .telemetry import CompletionLog
from .workspace_search import WorkspaceSearch

log = logging.getLogger("plusls")
SURROGATE = re.compile("[\ud800-\udfff]")
SYMBOL_KIND = {"function": t.SymbolKind.Function, "method": t.SymbolKind.Method, "class": t.SymbolKind.Class}
RERANK_BUDGET_S = 3.0  # the search command's wait for the model's reranking, past the index's answer
WARM_AFTER_S = 0.4  # quiet time after an open, an edit or a cursor move before the prompt is read ahead


class PluslsServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("plusls", "0.1.0")
        self.settings = Settings()
        self.completer: Completer | RemoteCompleter | None = None
        self.scheduler: RequestScheduler | None = None
        self.background: BackgroundQueue | None = None
        self.summarizer: Summarizer | None = None
        self.prefetch: SummaryPrefetch | None = None
        self.chat_model: ModelThread | None = None
        self.search: WorkspaceSearch | None = None
        self.telemetry = CompletionLog()
        self.completion_pool = ThreadPoolExecutor(1, thread_name_prefix="plusls-complete")
        self.docs_pool = ThreadPoolExecutor(1, thread_name_prefix="plusls-docs")
        self.index_pool = ThreadPoolExecutor(1, thread_name_prefix="plusls-index")
        self.export_pool = ThreadPoolExecutor(1, thread_name_prefix="plusls-export")
        self.query_pool = ThreadPoolExecutor(2, thread_name_prefix="plusls-query")
        self.defaults: DefaultModels | None = None
        self._completion_model: WatchedModel | None = None
        self._docstring_model: WatchedModel | None = None
        self._tasks: set[asyncio.Task] = set()  # the event loop keeps only weak references to tasks
        self.edited: set[str] = set()  # documents changed since they were opened or saved

    # --- settings and models -----------------------------------------------------------------------------------
    def apply_settings(self, raw: Any) -> None:
        settings, errors = parse_settings(raw, self.settings)
        for message in errors:
            self.show(f"plusls: bad setting {message}; keeping the previous value", t.MessageType.Error)
        old, self.settings = self.settings, settings
        if self.search is not None:
            self.search.settings = settings.search
            where = ("store", "repo", "embed_url", "embed_model")
            if self.search.index is not None and any(getattr(old.search, k) != getattr(settings.search, k)
                                                     for k in where):
                self.start(reindex_workspace(self, reload=True))  # another index, or another embedder for it
        if self.completer is None or (old.models, old.providers, old.remote) != (settings.models, settings.providers,
                                                                                settings.remote):
            self._load_models()
        elif old.completion != settings.completion:
            self.completer.reload(settings.completion)

    def _load_models(self) -> None:
        dirs = resolve_dirs(self.settings)
        options = runtime_options(self.settings)
        defaults = self.defaults = DefaultModels(dirs, options, self.defaults.exporting if self.defaults else None)
        self.log_choice()
        self._completion_model = WatchedModel(defaults.completion_dir, lambda p: CausalLM(p, options))
        self._docstring_model = WatchedModel(lambda: docstring_dir(dirs), lambda p: Seq2SeqLM(p, options))
        retriever = (lambda cursor: self.search.snippets_for(cursor)) if self.search else None

        def drafter() -> CausalLM | None:
            path = defaults.draft_dir()
            return CausalLM(path, options) if path else None

        if self.background is not None:
            self.background.drop()
        self.background = BackgroundQueue()
        if isinstance(self.completer, RemoteCompleter):
            self.completer.close()
        local = Completer(self._completion_model, self.settings.completion, retriever, drafter)
        self.completer = local
        if dirs.remote is not None:
            remote = self.settings.remote
            self.completer = RemoteCompleter(RemoteBackend(dirs.remote, remote), self.settings.completion, retriever,
                                             local if dirs.local() else None, self.notify)
        self.scheduler = RequestScheduler(self.completer, self.completion_pool, self.background)
        encoder_decoder = EncoderDecoderWriter(self._docstring_model)
        chat = self.settings.models.summaries != "docstring"
        chat_model = self.chat_model = ModelThread(self.completer, self.completion_pool, self.background)
        self.summarizer = Summarizer(ChatWriter(chat_model, encoder_decoder) if chat else encoder_decoder)
        self.prefetch = SummaryPrefetch(self.summarizer, self.docs_pool, self.background)

    def reranker(self) -> QueryLikelihood | None:
        """The search reranker: the local completion model, when it has a chat template (not on the event loop:
        asking may wait for the model thread)."""
        if not isinstance(self.completer, Completer) or self.chat_model is None or not self.chat_model.can_chat():
            return None
        return QueryLikelihood(self.chat_model.answer_logprob, RERANK_BUDGET_S)

    def log_choice(self) -> None:
        """One log line: which completer "auto" chose and why."""
        if self.defaults is not None and self.defaults.choice is not None:
            self.log_message(f"plusls: completing with {self.defaults.choice.name}: {self.defaults.choice.reason}")

    def refresh_models(self) -> None:
        """A model directory replaced on disk (plusls train refresh): load it on this request."""
        if self._completion_model and self._completion_model.changed() and self.completer:
            self.log_message("completion model changed on disk: reloading")
            self.completer.reload()
        if self._docstring_model and self._docstring_model.changed() and self.summarizer:
            self.log_message("docstring model changed on disk: reloading")
            self.summarizer.reload()
        if self.search is not None and self.search.embedder_replaced():
            self.log_message("embedding model changed on disk: re-embedding the workspace with it")
            self.start(reindex_workspace(self, reload=True))

    def open_workspace(self, root: Path | None) -> None:
        if root is None or not root.is_dir():
            return

        def embedding_dir() -> Path:
            if self.settings.search.embed_url:
                return Path(self.settings.search.embed_url)  # not a folder: it never changes on disk
            return self.defaults.embedding_dir()

        def embedder(path: Path):
            search = self.settings.search
            if search.embed_url:
                remote = RemoteEmbedder(search.embed_url, search.embed_model, search.embed_key_env)
                return remote, remote.model_id
            # One session: an extra parallel session costs the server more memory than the indexing speed it
            # brings is worth while the user works (`plusls index` keeps them; docs/measurements.md).
            options = replace(runtime_options(self.settings), parallel_sessions=1)
            return load_embedder(path, resolve_dirs(self.settings).models_dir, self.log_message, options)

        self.search = WorkspaceSearch(root, WatchedModel(embedding_dir, embedder), self.settings.search,
                                      log=self.log_message, unsaved=self.unsaved_documents,
                                      open_paths=lambda: [d.path for d in list(self.workspace.text_documents.values())
                                                          if d.path])
        if self.completer is not None:
            self.completer.retriever = lambda cursor: self.search.snippets_for(cursor)

    def start(self, work) -> asyncio.Task:
        """Run a coroutine in the background, keeping a reference until it is done."""
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def settled(self) -> None:
        """Return once background work has nothing left to do: exporting defaults, indexing, then the queue."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.background is not None:
            await self.background.settled()

    def unsaved_documents(self) -> dict[str, str]:
        """path -> text of the documents with unsaved changes (a shared index ranks them with its stored files)."""
        out = {}
        for uri in list(self.edited):
            doc = self.workspace.text_documents.get(uri)
            if doc is not None and doc.path:
                out[doc.path] = doc.source
        return out

    def close_document(self, uri: str) -> None:
        self.edited.discard(uri)
        if self.background is not None:
            self.background.drop(document=uri)
        if self.scheduler is not None:
            self.scheduler.close(uri)

    # --- messages ---------------------------------------------------------------------------------------------
    # Worker threads (index, model loading) call these too: pygls writes each message to stdout in one
    # BufferedWriter.write, which holds the writer's lock, so messages never interleave.
    def show(self, message: str, kind: t.MessageType = t.MessageType.Info) -> None:
        log.warning(message)
        self.window_show_message(t.ShowMessageParams(type=kind, message=message))

    def notify(self, message: str, error: bool) -> None:
        self.show(message, t.MessageType.Error if error else t.MessageType.Info)

    def log_message(self, message: str) -> None:
        log.info(message)
        self.window_log_message(t.LogMessageParams(type=t.MessageType.Log, message=message))

    # --- documents --------------------------------------------------------------------------------------------
    def cursor(self, uri: str, position: t.Position) -> tuple[Cursor, t.Position]:
        """The document at `position`, moved to the end of its line or of the document when past it (the
        position returned). The document's lines are split once: this runs on every keystroke."""
        doc = self.workspace.get_text_document(uri)
        text, lines, codec = doc.source, doc.lines, self.workspace.position_codec
        if not lines:
            offset, at = 0, t.Position(0, 0)
        elif position.line >= len(lines):
            offset = len(text)
            at = (t.Position(len(lines), 0) if lines[-1].endswith("\n")
                  else t.Position(len(lines) - 1, codec.client_num_units(lines[-1])))
        else:
            width = codec.client_num_units(lines[position.line].rstrip("\r\n"))
            at = t.Position(position.line, min(position.character, width))
            column = codec.position_from_client_units(lines, at).character
            offset = sum(map(len, lines[: at.line])) + column
        if SURROGATE.search(text):  # undecodable bytes a client passed through: never reach a tokenizer
            text = text.encode("utf-8", "replace").decode("utf-8")
        spec = spec_for(doc.path or uri)
        return Cursor(text, offset, spec.name if spec else "text", doc.path or uri), at


server = PluslsServer()


@server.feature(t.INITIALIZE)
def initialize(ls: PluslsServer, params: t.InitializeParams) -> None:
    ls.open_workspace(Path(ls.workspace.root_path) if ls.workspace.root_path else None)
    ls.apply_settings(params.initialization_options)


@server.feature(t.INITIALIZED)
def initialized(ls: PluslsServer, params: t.InitializedParams) -> None:
    missing = ls.defaults.missing() if ls.defaults else []
    ls.defaults.exporting.update(m.name for m in missing)  # now: the requests that follow see it
    ls.start(prepare(ls, missing))


async def prepare(ls: PluslsServer, missing: list[DefaultModel]) -> None:
    """Export the default models missing on disk, choose the completer ("auto"), load it while the user reads,
    then index the workspace."""
    if missing:
        await export_defaults(ls, missing)
    if ls.defaults is not None and ls.defaults.choosing():
        await choose_completer(ls)
    local = ls.defaults is not None and ls.defaults.dirs.remote is None  # a stand-in for a server loads when needed
    if local and ls.completer is not None and ls.settings.completion.enabled and ls.defaults.completer_ready():
        try:
            await asyncio.get_running_loop().run_in_executor(ls.completion_pool, ls.completer.manifest)
        except PluslsError as e:  # said again to the request that needs it
            ls.log_message(f"plusls: the completion model did not load: {e}")
    if ls.search is not None and ls.settings.search.enabled and ls.settings.search.index_on_start:
        await reindex_workspace(ls)


async def export_defaults(ls: PluslsServer, missing: list[DefaultModel]) -> None:
    """Default models missing on disk, exported once, one after the other, before anything needs them; meanwhile
    suggestions wait quietly and hover or search say why they cannot answer yet."""
    names = ", ".join(m.name for m in missing)
    ls.show(f"plusls: exporting the default models once ({names}): a few minutes; suggestions, hover and search "
            "start when it is done")
    progress = await WorkProgress.begin(ls, f"plusls-export-{id(ls)}", "plusls: exporting default models")
    loop = asyncio.get_running_loop()
    for done, model in enumerate(missing):
        progress.report(model.name, done * 100 // len(missing))
        try:
            await loop.run_in_executor(ls.export_pool, ls.defaults.export, model, ls.log_message)
        except Exception as e:
            ls.show(f"plusls: exporting {model.name} failed: {e}. Run `plusls demo` in a terminal to see the "
                    "export's log, then restart the server", t.MessageType.Error)
    progress.end(f"exported {names}")


async def choose_completer(ls: PluslsServer) -> None:
    """Measure the installed default completers here (once per machine, model and onnxruntime version; a few
    seconds each) and choose the largest that meets the latency budgets."""
    defaults = ls.defaults
    progress = await WorkProgress.begin(ls, f"plusls-speed-{id(ls)}", "plusls: measuring completion speed")
    progress.report(f"once on this machine: {', '.join(m.name for m in defaults.candidates)}", 0)
    try:
        await asyncio.get_running_loop().run_in_executor(ls.export_pool, defaults.choose, True)
    except Exception as e:
        ls.show(f"plusls: measuring the completion models failed: {e}. Set plusls.models.completion to a model "
                "name or directory to skip it", t.MessageType.Error)
    progress.end(f"completing with {defaults.completer.name}" if defaults.completer else "no completer chosen")
    if defaults is ls.defaults:
        ls.log_choice()


@server.feature(t.WORKSPACE_DID_CHANGE_CONFIGURATION)
def did_change_configuration(ls: PluslsServer, params: t.DidChangeConfigurationParams) -> None:
    raw = params.settings
    if isinstance(raw, dict) and "plusls" in raw:
        raw = raw["plusls"]
    ls.apply_settings(raw)
    if ls.defaults is not None and ls.defaults.choosing() and not ls.defaults.exporting:
        ls.start(choose_completer(ls))  # back to "auto" with a model not measured yet (an export running does it)


@server.feature(t.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: PluslsServer, params: t.DidOpenTextDocumentParams) -> None:
    uri = params.text_document.uri
    warm_later(ls, uri, t.Position(params.text_document.text.count("\n") + 1, 0))  # where a new file grows
    summarize_later(ls, uri)


@server.feature(t.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: PluslsServer, params: t.DidChangeTextDocumentParams) -> None:
    ls.edited.add(params.text_document.uri)
    change = params.content_changes[-1] if params.content_changes else None
    if isinstance(change, t.TextDocumentContentChangePartial):
        warm_later(ls, params.text_document.uri, edit_end(change))
    summarize_later(ls, params.text_document.uri)


@server.feature(t.TEXT_DOCUMENT_DOCUMENT_HIGHLIGHT)
def document_highlight(ls: PluslsServer, params: t.DocumentHighlightParams) -> None:
    """No highlights: editors ask on cursor moves (VS Code on every one; Neovim where a CursorHold autocmd asks),
    which tells the server where the user may type next, so that spot is warmed while they pause."""
    warm_later(ls, params.text_document.uri, params.position)
    return None


def edit_end(change: t.TextDocumentContentChangePartial) -> t.Position:
    """Where the cursor is after typing `change.text` over `change.range`."""
    lines = change.text.split("\n")
    start = change.range.start
    if len(lines) == 1:
        return t.Position(start.line, start.character + len(lines[0]))
    return t.Position(start.line + len(lines) - 1, len(lines[-1]))


def warm_later(ls: PluslsServer, uri: str, position: t.Position) -> None:
    """Once the document is quiet, read the prompt at `position` (the document as it is then) into its key/value
    cache: the next request runs only its new tokens (llama.vim warms the same way)."""
    settings = ls.settings.completion
    if ls.completer is None or not settings.enabled or not settings.prefix_reuse or not ls.defaults.completer_ready():
        return
    completer = ls.completer

    def warm(cancel) -> None:
        completer.warm(uri, ls.cursor(uri, position)[0], cancel)

    ls.background.schedule(Job(f"warming {uri}", WARM_KEY, uri, warm, ls.completion_pool), WARM_AFTER_S)


def summarize_later(ls: PluslsServer, uri: str) -> None:
    """Hover summaries of the document's new or changed definitions, made while the user is not waiting."""
    if ls.prefetch is not None and ls.settings.hover.enabled:
        def definitions() -> list[Definition]:
            document = ls.workspace.get_text_document(uri)
            return definitions_in(document.path, document.source)
        ls.prefetch.schedule(uri, definitions)


@server.feature(t.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: PluslsServer, params: t.DidCloseTextDocumentParams) -> None:
    ls.close_document(params.text_document.uri)


@server.feature(t.TEXT_DOCUMENT_DID_SAVE)
async def did_save(ls: PluslsServer, params: t.DidSaveTextDocumentParams) -> None:
    ls.edited.discard(params.text_document.uri)
    path = to_fs_path(params.text_document.uri)
    if ls.search is not None and ls.settings.search.enabled and path:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(ls.index_pool, ls.search.reindex_file, Path(path))


# --- completion -------------------------------------------------------------------------------------------------
async def suggest(ls: PluslsServer, uri: str,
                  position: t.Position) -> tuple[Suggestion, Cursor, t.Position] | None:
    if ls.scheduler is None or not ls.settings.completion.enabled or not ls.defaults.completer_ready():
        return None
    ls.refresh_models()
    cursor, at = ls.cursor(uri, position)
    suggestion = await ls.scheduler.complete(uri, cursor)
    if suggestion is None:
        return None
    if ls.settings.telemetry.enabled:
        ls.telemetry.shown(suggestion.id, suggestion.text, cursor.text[max(0, cursor.offset - 2000) : cursor.offset],
                           cursor.text[cursor.offset : cursor.offset + 500], cursor.language, cursor.path)
    return suggestion, cursor, at


def accept_command(suggestion: Suggestion) -> t.Command:
    return t.Command("Accept plusls suggestion", "plusls.acceptCompletion",
                     arguments=[{"id": suggestion.id, "accepted": True}])


@server.feature(t.TEXT_DOCUMENT_INLINE_COMPLETION, t.InlineCompletionOptions())
async def inline_completion(ls: PluslsServer, params: t.InlineCompletionParams) -> t.InlineCompletionList | None:
    found = await suggest(ls, params.text_document.uri, params.position)
    if found is None:
        return None
    suggestion, _, at = found
    here = t.Range(at, at)
    return t.InlineCompletionList(items=[t.InlineCompletionItem(insert_text=suggestion.text, range=here,
                                                                command=accept_command(suggestion))])


@server.feature(t.TEXT_DOCUMENT_COMPLETION, t.CompletionOptions(resolve_provider=False))
async def completion(ls: PluslsServer, params: t.CompletionParams) -> t.CompletionList | None:
    found = await suggest(ls, params.text_document.uri, params.position)
    if found is None:
        return None
    suggestion, cursor, at = found
    # Replace the word being typed, so clients that filter by it keep the item.
    word = len(cursor.line_prefix) - len(cursor.line_prefix.rstrip("abcdefghijklmnopqrstuvwxyz"
                                                                     "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"))
    start = t.Position(at.line, max(0, at.character - word))
    typed = cursor.line_prefix[len(cursor.line_prefix) - word :]
    label = (typed + suggestion.text).split("\n")[0].strip()[:80] or suggestion.text.strip()[:80]
    item = t.CompletionItem(
        label=label, kind=t.CompletionItemKind.Text, detail="plusls", filter_text=typed + suggestion.text,
        text_edit=t.TextEdit(t.Range(start, at), typed + suggestion.text),
        insert_text_format=t.InsertTextFormat.PlainText, command=accept_command(suggestion), sort_text="0")
    return t.CompletionList(is_incomplete=True, items=[item])


# --- hover and docstrings -----------------------------------------------------------------------------------------
async def definition_under(ls: PluslsServer, uri: str, position: t.Position) -> Definition | None:
    cursor, _ = ls.cursor(uri, position)
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(ls.query_pool, definition_at, cursor.path, cursor.text, cursor.offset)


@server.feature(t.TEXT_DOCUMENT_HOVER)
async def hover(ls: PluslsServer, params: t.HoverParams) -> t.Hover | None:
    if not ls.settings.hover.enabled or ls.summarizer is None:
        return None
    definition = await definition_under(ls, params.text_document.uri, params.position)
    if definition is None:
        return None
    ls.refresh_models()
    summary = ls.summarizer.hover_cached(definition)
    note = ""
    if summary is None:
        loop = asyncio.get_running_loop()
        try:
            summary = await loop.run_in_executor(ls.docs_pool, ls.summarizer.hover, definition)
        except PluslsError as e:
            summary, note = "", f"_(no summary: {e})_"
    parts = [f"```{definition.language}\n{definition.signature}\n```"]
    if summary:
        parts.append(f"**plusls:** {as_sentence(summary)}")
    if note:
        parts.append(note)
    if definition.docstring:
        parts.append(f"---\n{definition.docstring}")
    return t.Hover(t.MarkupContent(t.MarkupKind.Markdown, "\n\n".join(parts)))


@server.feature(t.TEXT_DOCUMENT_CODE_ACTION,
                t.CodeActionOptions(code_action_kinds=[t.CodeActionKind.RefactorRewrite], resolve_provider=True))
async def code_action(ls: PluslsServer, params: t.CodeActionParams) -> list[t.CodeAction] | None:
    if not ls.settings.docstring.enabled or ls.summarizer is None:
        return None
    kind = t.CodeActionKind.RefactorRewrite.value
    if params.context.only and not any(kind.startswith(k) for k in params.context.only):
        return None  # the client asked for other kinds (e.g. quickfix only)
    uri = params.text_document.uri
    definition = await definition_under(ls, uri, params.range.start)
    if definition is None or definition.docstring:
        return None
    action = t.CodeAction(f"Generate docstring for {definition.name}", kind=t.CodeActionKind.RefactorRewrite,
                          data={"uri": uri, "line": params.range.start.line,
                                "character": params.range.start.character})
    resolve = ls.client_capabilities.text_document and ls.client_capabilities.text_document.code_action
    can_resolve = bool(resolve and resolve.resolve_support and "edit" in resolve.resolve_support.properties)
    return [action if can_resolve else await resolve_code_action(ls, action)]


@server.feature(t.CODE_ACTION_RESOLVE)
async def resolve_code_action(ls: PluslsServer, action: t.CodeAction) -> t.CodeAction:
    data = action.data or {}
    uri, position = data["uri"], t.Position(data["line"], data["character"])
    definition = await definition_under(ls, uri, position)
    if definition is None or ls.summarizer is None:
        return action
    loop = asyncio.get_running_loop()
    try:
        summary = await loop.run_in_executor(ls.docs_pool, ls.summarizer.summarize, definition)
    except PluslsError as e:  # no docstring model: the name in words, and say why
        ls.show(f"plusls: {e}", t.MessageType.Warning)
        summary = ""
    explained = ls.summarizer.hover_cached(definition) or ""  # only when the background has explained it already
    insertion = docstring_insertion(definition, summary or identifier_words(definition.name),
                                    ls.workspace.get_text_document(uri).source, what_it_returns(explained))
    at = t.Position(insertion.line, insertion.character)
    action.edit = t.WorkspaceEdit(changes={uri: [t.TextEdit(t.Range(at, at), insertion.text)]})
    return action


# --- search -----------------------------------------------------------------------------------------------------
async def run_search(ls: PluslsServer, query: str, k: int, rerank: bool = False):
    if ls.search is None or not ls.settings.search.enabled:
        raise PluslsError("semantic search needs a workspace folder and plusls.search.enabled")
    ls.refresh_models()
    search = ls.search

    def run():
        return search.search(query, k, ls.reranker() if rerank and ls.settings.search.rerank else None)

    return await asyncio.get_running_loop().run_in_executor(ls.query_pool, run)


@server.feature(t.WORKSPACE_SYMBOL)
async def workspace_symbol(ls: PluslsServer, params: t.WorkspaceSymbolParams) -> list[t.SymbolInformation]:
    if not params.query.strip() or ls.search is None or not ls.settings.search.enabled:
        return []
    response = await run_search(ls, params.query, 20)
    root = ls.search.root
    return [t.SymbolInformation(
        name=r.qualname, kind=SYMBOL_KIND.get(r.kind, t.SymbolKind.File), container_name=r.path,
        location=t.Location(from_fs_path(str(root / r.path)),
                            t.Range(t.Position(r.start_line - 1, 0), t.Position(r.end_line, 0))))
        for r in response.results]


async def reindex_workspace(ls: PluslsServer, reload: bool = False) -> dict:
    progress = await WorkProgress.begin(ls, f"plusls-index-{id(ls)}", "plusls: indexing")

    def report(p: IndexProgress) -> None:
        progress.report(p.counts(), p.percent())

    try:
        summary = await asyncio.get_running_loop().run_in_executor(ls.index_pool, ls.search.update, report, reload)
    except Exception as e:
        ls.show(f"plusls: indexing failed: {e}", t.MessageType.Error)
        progress.end(f"failed: {e}")
        return {"error": str(e)}
    first = f", searchable after {summary.scan_seconds:.1f}s" if summary.scan_seconds else ""
    message = (f"indexed {summary.files_indexed} files ({summary.files_unchanged} unchanged){first}; "
               f"{summary.chunks_embedded} chunks embedded in {summary.seconds:.1f}s")
    if summary.rebuilt_reason:
        ls.show(f"plusls: {summary.rebuilt_reason}")
    ls.log_message(message)
    progress.end(message)
    return {"filesIndexed": summary.files_indexed, "filesUnchanged": summary.files_unchanged,
            "chunksEmbedded": summary.chunks_embedded, "skipped": dict(summary.skipped),
            "seconds": round(summary.seconds, 3)}


# Commands are registered one by one: pygls advertises them in executeCommandProvider only that way.
@server.command("plusls.search")
async def search_command(ls: PluslsServer, *args) -> list[dict]:
    if not args or not isinstance(args[0], str):
        raise PluslsError("plusls.search takes [query, k?]")
    k = args[1] if len(args) > 1 and isinstance(args[1], int) else 10
    response = await run_search(ls, args[0], k, rerank=True)
    return [{"path": r.path, "startLine": r.start_line, "endLine": r.end_line, "name": r.qualname,
             "kind": r.kind, "score": r.score, "snippet": r.snippet} for r in response.results]


@server.command("plusls.reindex")
async def reindex_command(ls: PluslsServer, *args) -> dict:
    if ls.search is None:
        raise PluslsError("no workspace folder to index")
    return await reindex_workspace(ls)


@server.command("plusls.acceptCompletion")
def accept_completion_command(ls: PluslsServer, *args) -> dict:
    item = args[0] if args and isinstance(args[0], dict) else {}
    if not isinstance(item.get("id"), str):
        raise PluslsError("plusls.acceptCompletion takes [{id, accepted}]")
    recorded = ls.settings.telemetry.enabled and ls.telemetry.record(item["id"], bool(item.get("accepted", True)))
    return {"recorded": bool(recorded)}


@server.command("plusls.stats")
async def stats_command(ls: PluslsServer, *args) -> dict:
    """Counters for tests, benchmarks and bug reports. [{"settled": true}]: once background work (warming,
    summaries) has nothing left to do."""
    if args and isinstance(args[0], dict) and args[0].get("settled"):
        await ls.settled()
    return {"completion": ls.completer.stats.to_dict() if ls.completer else {},
            "summaries": ls.summarizer.model_runs if ls.summarizer else 0,
            "explanations": ls.summarizer.explanations if ls.summarizer else 0,
            "summaries_prefetched": ls.prefetch.prefetched if ls.prefetch else 0,
            "summaries_pending": ls.prefetch.pending() if ls.prefetch else 0,
            "background_jobs_done": ls.background.done if ls.background else 0,
            "completer": ls.defaults.choice.to_dict() if ls.defaults and ls.defaults.choice else None,
            "settings": camel_keys(ls.settings)}


def serve() -> None:
    logging.basicConfig(level=logging.WARNING, format="plusls %(levelname)s %(message)s")
    server.start_io()
