"""The completion prompt: FIM only when declared, a window that stays put while typing, retrieved snippets."""
from __future__ import annotations

from pathlib import Path

from fixture_repo import make_repo

from plusls.completion.prompt import Cursor, PromptBuilder, Snippet, WindowState
from plusls.exported.causal_lm import CausalLM
from plusls.exported.watched_model import WatchedModel
from plusls.indexer.embedding_model import load_embedder
from plusls.server.settings import SearchSettings
from plusls.server.workspace_search import WorkspaceSearch

CODE = "".join(f"def f{i}(x):\n    return x + {i}\n\n" for i in range(200))


def test_fim_prompt_only_when_the_manifest_declares_fim_tokens(exported):
    fim_lm, plain_lm = CausalLM(exported["gpt2"]), CausalLM(exported["llama"])
    cursor = Cursor("def add(a, b):\n    return \n\nprint(add(1, 2))\n", 26)
    assert fim_lm.manifest.fim and not plain_lm.manifest.fim
    ids = PromptBuilder(fim_lm.tokenizer, fim_lm.manifest.fim, 128, 32).build(cursor, WindowState())
    tok = fim_lm.tokenizer
    assert ids[0] == tok.token_to_id("<fim_prefix>")
    suffix, middle = ids.index(tok.token_to_id("<fim_suffix>")), ids.index(tok.token_to_id("<fim_middle>"))
    assert tok.decode(ids[1:suffix]) == "def add(a, b):\n"
    assert tok.decode(ids[suffix + 1 : middle]).startswith("\n\nprint(add(1, 2))")
    assert tok.decode(ids[middle + 1 :]) == "    return "  # the cursor line starts the middle
    at_line_start = PromptBuilder(tok, fim_lm.manifest.fim, 128, 32).build(Cursor(cursor.text, 15), WindowState())
    assert at_line_start[-1] == tok.token_to_id("<fim_middle>")
    plain = PromptBuilder(plain_lm.tokenizer, None, 128, 32).build(cursor, WindowState())
    assert plain_lm.tokenizer.decode(plain) == "def add(a, b):\n    return "


def test_typing_mid_file_changes_only_the_fim_prompts_last_tokens(exported):
    """With code below the cursor, a keystroke on the line changes only what follows the middle marker: the file's
    prefix and the suffix keep their key/values (the prefix-reuse loop re-runs a few tokens, not the suffix)."""
    lm = CausalLM(exported["gpt2"])
    builder, state = PromptBuilder(lm.tokenizer, lm.manifest.fim, 256, 64), WindowState()
    line = "    return x + 100"
    line_at = CODE.index(line)
    prompts = [builder.build(Cursor(CODE[: line_at + n] + CODE[line_at + len(line) :], line_at + n), state)
               for n in range(4, len(line))]
    assert len(prompts) == 14
    middle = lm.tokenizer.token_to_id("<fim_middle>")
    for a, b in zip(prompts, prompts[1:]):
        assert a[: a.index(middle) + 1] == b[: b.index(middle) + 1]
        assert len(b) - b.index(middle) <= len(line) + 1
    last, suffix = prompts[-1], lm.tokenizer.token_to_id("<fim_suffix>")
    window = lm.tokenizer.decode(last[1 : last.index(suffix)]) + lm.tokenizer.decode(last[last.index(middle) + 1 :])
    assert window == CODE[state.start : line_at + len(line) - 1]  # the whole window, above and on the line


def test_window_keeps_its_start_while_typing_and_fits_the_budget(exported):
    lm = CausalLM(exported["llama"])
    builder = PromptBuilder(lm.tokenizer, None, 96, 0)
    state = WindowState()
    starts, prompts = [], []
    for end in range(len(CODE) - 400, len(CODE) - 300, 7):  # typing 100 characters
        ids = builder.build(Cursor(CODE[:end], end), state)
        assert len(ids) <= 96
        starts.append(state.start)
        prompts.append(ids)
    assert CODE[starts[0] - 1] == "\n"  # a line start
    assert len(set(starts)) <= 3  # moved rarely, not on every keystroke
    pairs = [(a, b) for a, b, sa, sb in zip(prompts, prompts[1:], starts, starts[1:]) if sa == sb]
    assert len(pairs) >= len(prompts) - 3
    for a, b in pairs:  # consecutive prompts share all but their last tokens: what prefix reuse needs
        assert b[: len(a) - 3] == a[:-3]


def test_snippets_come_from_other_files_of_the_workspace(tmp_path, exported):
    root = make_repo(tmp_path / "ws")
    embedder = WatchedModel(lambda: exported["bert"], lambda path: load_embedder(path, tmp_path))
    search = WorkspaceSearch(root, embedder, SearchSettings(), index_dir=tmp_path / "index", log=lambda m: None)
    search.update()
    text = "def fibonacci_again(n):\n    a, b = 0, 1\n    for _ in range(n):\n        "
    cursor = Cursor(text, len(text), "python", str(root / "src" / "new.py"))
    snippets = search.snippets_for(cursor)
    assert snippets and all(s.path != "src/new.py" for s in snippets)
    tokenizer = CausalLM(exported["llama"]).tokenizer
    prompt = tokenizer.decode(PromptBuilder(tokenizer, None, 1024, 0).build(cursor, WindowState(snippets=snippets)))
    assert prompt.startswith(f"# Similar code in {snippets[0].path}:\n# ") and prompt.endswith(text)
    header = prompt[: -len(text)]
    assert all(line.startswith("#") for line in header.strip().split("\n"))  # comments above this file's code
    search.close()
    assert isinstance(snippets[0], Snippet) and Path(root / snippets[0].path).exists()


def test_repository_layout_when_the_manifest_declares_its_tokens(exported):
    """With <|repo_name|>/<|file_sep|> declared (Qwen2.5-Coder; the tiny qwen2 has its tokens), snippets become files
    of the repository before this file's FIM part, instead of comments inside the prefix."""
    lm = CausalLM(exported["qwen2"])
    tok, repo = lm.tokenizer, lm.manifest.special_tokens["repo"]
    name, sep = tok.token_to_id("<|repo_name|>"), tok.token_to_id("<|file_sep|>")
    assert (repo["name"]["id"], repo["file_sep"]["id"]) == (name, sep)
    builder = PromptBuilder(tok, lm.manifest.fim, 256, 32, repo)
    state = WindowState(snippets=[Snippet("src/mathutil.py", "def add(a, b):\n    return a + b")])
    text = "def twice(x):\n    return add(x, x)\n"
    cursor = Cursor(text, text.index(" add"), "python", "/ws/proj/src/new.py")
    ids = builder.build(cursor, state)
    fim_start = ids.index(tok.token_to_id("<|fim_prefix|>"))
    head = ids[:fim_start]
    assert head[0] == name and head.count(sep) == 2
    first, second = head.index(sep), len(head) - 1 - head[::-1].index(sep)
    assert tok.decode(head[1:first]) == "src\n"  # the file's folder names the repository
    assert tok.decode(head[first + 1 : second]) == "src/mathutil.py\ndef add(a, b):\n    return a + b\n"
    assert tok.decode(head[second + 1 :]) == "new.py\n"
    suffix, middle = ids.index(tok.token_to_id("<|fim_suffix|>")), ids.index(tok.token_to_id("<|fim_middle|>"))
    assert tok.decode(ids[fim_start + 1 : suffix]) == "def twice(x):\n"
    assert tok.decode(ids[middle + 1 :]) == "    return"
    # Without snippets: the plain FIM prompt, nothing before it.
    assert builder.build(cursor, WindowState())[0] == tok.token_to_id("<|fim_prefix|>")


def test_prefix_suffix_middle_keeps_the_line_in_the_prefix(exported):
    lm = CausalLM(exported["gpt2"])
    line = "    return x + 100"
    at = CODE.index(line) + 8
    cursor = Cursor(CODE[:at] + CODE[CODE.index(line) + len(line) :], at)
    ids = PromptBuilder(lm.tokenizer, lm.manifest.fim, 256, 64, line_after_middle=False).build(cursor, WindowState())
    prefix, suffix, middle = (lm.tokenizer.token_to_id(t) for t in ("<fim_prefix>", "<fim_suffix>", "<fim_middle>"))
    assert ids[0] == prefix and ids[-1] == middle  # nothing after the middle marker: the model writes from there
    assert lm.tokenizer.decode(ids[1 : ids.index(suffix)]).endswith("    retu")
