"""`plusls demo`, the main job on the embedded defaults: export them once, rank code by a query, index a workspace
(this repository by default) and search it, complete code, drive `plusls serve` as an editor would, print the
doctor report. Results go to stdout, one line per long step; details (export logs, warnings, the server's stderr)
go to the log file it names."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from plusls.completion.filters import postprocess
from plusls.completion.prompt import Cursor, PromptBuilder, WindowState
from plusls.exported import CausalLM, Embedder, GenerationConfig, RuntimeOptions
from plusls.exported.defaults import EMBEDDER, ensure_default, installed_completers
from plusls.exported.doctor import collect, format_report
from plusls.indexer.embedding_model import first_pass_for, load_embedder
from plusls.indexer.progress_bar import ProgressBar
from plusls.indexer.search import search
from plusls.indexer.workspace_index import WorkspaceIndex
from plusls.server.demo_session import run_editor_session

from .doctor import completer_report, format_completer
from .model_dirs import DefaultModels, ModelDirs

SNIPPETS = {
    "read_text": "def read_text(path):\n    with open(path, encoding='utf-8') as f:\n        return f.read()",
    "fibonacci": "def fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a",
    "http_get": "import urllib.request\n\ndef fetch(url):\n    return urllib.request.urlopen(url).read()",
    "sort_users": "def sort_users(users):\n    return sorted(users, key=lambda u: u.age)",
    "parse_json": "import json\n\ndef load_config(path):\n    return json.load(open(path))",
}
QUERY = "read the contents of a text file"
CURSOR = "<CURSOR>"
FILES = [  # completions start mid-statement, as they do in an editor, with the code after the cursor known
    'def is_palindrome(s: str) -> bool:\n    """Return True if s reads the same backwards."""\n    return<CURSOR>\n',
    "def mean(values):\n    total = 0\n    for v in values:\n        total +=<CURSOR>\n    return total / len(values)\n",
    "import os\n\n\ndef list_python_files(folder):\n    return [f for f in os.listdir(folder) if<CURSOR>]\n",
]


def _log(msg: str) -> None:
    print(f"plusls: {msg}", file=sys.stderr, flush=True)


def _step(msg: str) -> None:
    print(msg, flush=True)


SEARCHES = ["check that a model directory is intact", "split a long function into overlapping windows",
            "ExportError"]


def run_demo(models_dir: Path, workspace: Path, log_file: Path | None = None) -> None:
    if log_file is None:
        _run(models_dir, workspace)
        return
    log_file.parent.mkdir(parents=True, exist_ok=True)
    _step(f"details: {log_file}")
    # Everything written to stderr, by Python, by native libraries and by the server it starts, goes to the log.
    saved = os.dup(2)
    with log_file.open("a") as log:
        os.dup2(log.fileno(), 2)
        try:
            _run(models_dir, workspace)
        except BaseException:
            _step(f"failed: the end of {log_file} says why")
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def _run(models_dir: Path, workspace: Path) -> None:
    options = RuntimeOptions.from_env()
    t = time.perf_counter()
    completers = installed_completers()
    for model in (EMBEDDER, *completers):
        if not (models_dir / model.name / "manifest.json").is_file():
            _step(f"exporting the default {model.kind} model {model.name} (once; a minute or two on 2 CPU cores)...")
        ensure_default(model, models_dir, _log)
    # What the language server completes with: the largest completer this machine serves within the budgets.
    defaults = DefaultModels(ModelDirs(None, None, None, models_dir), options)
    if defaults.choosing():
        _step("measuring each completer's speed on this machine (once, a few seconds each)...")
        defaults.choose(measure=True)
    embed_dir, lm_dir = defaults.embedding_dir(), defaults.completion_dir()
    print(f"default models ready in {time.perf_counter() - t:.1f}s: {embed_dir}, {lm_dir}")
    print(f"completing with {defaults.choice.name}: {defaults.choice.reason}\n")

    embedder = Embedder(embed_dir, options)
    vectors = embedder.embed(list(SNIPPETS.values()))
    query = embedder.embed([QUERY])[0]
    scores = vectors @ query
    print(f"search ({embed_dir.name} on {', '.join(embedder.providers)}): {QUERY!r}")
    for rank, i in enumerate(scores.argsort()[::-1], 1):
        print(f"  {rank}. {list(SNIPPETS)[i]:<12} {scores[i]:.3f}")

    _index_and_search(workspace, models_dir)

    lm = CausalLM(lm_dir, options)
    layout = "fill-in-the-middle" if lm.manifest.fim else "prefix only"
    print(f"\ncompletion ({lm_dir.name} on {', '.join(lm.providers)}, greedy, {layout}; prompted and filtered as the "
          "server does):")
    builder = PromptBuilder(lm.tokenizer, lm.manifest.fim, 1024, 256, lm.manifest.special_tokens.get("repo"))
    config = GenerationConfig(max_new_tokens=48, stop=("\n",))
    for file in FILES:
        offset = file.index(CURSOR)
        text = file.replace(CURSOR, "")
        cursor = Cursor(text, offset, "python", "demo.py")
        g = lm.generate_ids([builder.build(cursor, WindowState())], config)[0]
        suggestion = postprocess(g.text, cursor.filter_context())
        before, after = text[:offset], text[offset:]
        print("  " + "-" * 60)
        shown = before + "\u00ab" + suggestion + "\u00bb" + after  # the suggestion between << >>
        print("".join(f"  | {line}\n" for line in shown.rstrip("\n").split("\n")), end="")
        print(f"  ({len(g.token_ids)} tokens, {g.finish_reason}; prompt {g.prompt_tokens} tokens, first token "
              f"{g.first_token_s * 1000:.0f} ms, {g.tokens_per_s:.1f} tokens/s)")

    run_editor_session(workspace, models_dir)
    print("\nplusls doctor:")
    print("\n".join([format_report(collect(models_dir, options)),
                     *format_completer(completer_report(models_dir, options, bench=False))]))


def _index_and_search(workspace: Path, models_dir: Path) -> None:
    embedder, model_id = load_embedder(None, models_dir, _log)
    index = WorkspaceIndex(workspace, embedder, model_id, log=_log, static=first_pass_for(embedder, model_id, _log))
    s = index.update(progress=ProgressBar(sys.stdout, every_s=15))
    counts = index.store.counts()
    print(f"\nindexed {workspace}: {counts['files']} files, {counts['chunks']} chunks ({s.files_indexed} files "
          f"changed since last run; searchable after {s.scan_seconds:.1f}s, {s.chunks_embedded} chunks embedded "
          f"at {s.chunks_per_s:.0f}/s, {s.seconds:.1f}s in all)")
    for query in SEARCHES:
        print(f"search {query!r}:")
        for r in search(index, query, k=3).results:
            print(f"  {r.path}:{r.start_line}  {r.qualname}")
    index.close()
