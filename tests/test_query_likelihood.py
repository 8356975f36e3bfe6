"""Search reranked by the completion model's likelihood of the query given each result's code: the score is the
answer's log-probability under the model's chat frame, the reranked order fuses the index's and the model's, the
CLI and the server's search command use it, and workspace/symbol (answering as the user types) does not."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fixture_repo import FILES, make_repo
from test_chat_summary import with_chat_template

from plusls.common.chat import frame_chat, frame_of
from plusls.common.errors import PluslsError
from plusls.exported.causal_lm import CausalLM
from plusls.exported.generation import token_logprobs
from plusls.indexer.query_likelihood import query_messages

# Plain-language queries (a query naming code is left to the exact-name boost, not reranked) that share no word
# with the function each describes.
WANTED = {"load a file as one string": ("src/files.py", "read_text"),
          "golden ratio sequence term": ("src/mathutil.py", "fibonacci"),
          "test for primality": ("src/mathutil.py", "is_prime"),
          "order people from young to old": ("web/types.ts", "sortByAge")}


def _chunk_text(path: str, name: str) -> str:
    from plusls.indexer.chunker import chunk_file

    return next(c.text for c in chunk_file(path, FILES[path]) if c.name == name)


@pytest.fixture(scope="module")
def searcher(tmp_path_factory) -> Path:
    """A tiny chat model that learned which query goes with each fixture function, in the reranker's own frame."""
    from test_chat_summary import CHATML
    from tiny_models import memorized_causal_lm

    from plusls.common.chat import chat_frame
    from plusls.exported.export import export_model

    frame = chat_frame(CHATML)
    texts = [frame_chat(frame, query_messages(_chunk_text(path, name))) + query
             for query, (path, name) in WANTED.items()]
    root = tmp_path_factory.mktemp("searcher")
    src = memorized_causal_lm(root / "checkpoint", texts, steps=600)
    export_model(src, "causal-lm", root / "plain", log=lambda m: None)
    return with_chat_template(root / "plain", root / "model")


@pytest.mark.parametrize("arch", ["qwen2", "gpt2"])
def test_the_score_is_the_answer_s_log_probability_after_the_framed_conversation(exported, arch, tmp_path):
    lm = CausalLM(with_chat_template(exported[arch], tmp_path / "chat"))
    messages, answer = query_messages("def add(a, b):\n    return a + b"), "add two numbers"
    context, text = lm.encode(frame_chat(frame_of(lm.manifest.config), messages)), lm.encode(answer)
    ids = np.asarray([(context + text)[-lm.manifest.max_length :]], np.int64)  # a long one: its end
    logits, _ = lm.forward(ids, np.ones_like(ids), np.arange(ids.shape[1])[None], lm.empty_past(1))
    want = token_logprobs(logits[0, -len(text) - 1 : -1], text).sum()
    assert lm.answer_logprob(messages, answer) == pytest.approx(float(want), abs=1e-4)
    assert lm.answer_logprob(messages, "add two numbers together") < lm.answer_logprob(messages, answer)
    # The next candidate shares the system turn with the last one: its start is not run again, same score.
    other = query_messages("def sub(a, b):\n    return a - b")
    fresh = CausalLM(lm.files.directory).answer_logprob(other, answer)
    assert lm.answer_logprob(other, answer) == pytest.approx(fresh, abs=1e-4)


def test_only_a_model_that_can_answer_in_chat_form_or_a_matching_export_reranks(exported):
    from plusls.indexer.rerankers import load_reranker

    for arch in ("qwen2", "t5"):  # no chat template; not a causal LM
        with pytest.raises(PluslsError, match="cannot rerank"):
            load_reranker(str(exported[arch]))


def test_the_order_fuses_the_index_s_and_the_model_s():
    from plusls.indexer.search import rerank_order

    # The model's favourite, second in the index, goes first, yet the index's first result, which the model likes
    # least, stays ahead of those neither put first: the model's scores alone rank CoSQA worse than the index.
    assert rerank_order([-5.0, -1.0, -2.0, -3.0]) == [1, 0, 2, 3]
    assert rerank_order([-1.0, -5.0]) == [0, 1]
    assert rerank_order([-5.0, -1.0]) == [0, 1]  # only second: not enough to pass the index's first


def test_a_time_budget_scores_the_first_results_and_leaves_the_rest_in_the_index_s_order(exported, tmp_path):
    from plusls.exported import Embedder
    from plusls.indexer.query_likelihood import QueryLikelihood
    from plusls.indexer.search import rerank_order, search
    from plusls.indexer.workspace_index import WorkspaceIndex

    now = [0.0]

    def scorer(messages, answer):  # each pass of the model takes a second; the last code scored is liked best
        now[0] += 1.0
        return now[0]

    index = WorkspaceIndex(make_repo(tmp_path / "ws"), Embedder(exported["bert"]), "tiny-bert", tmp_path / "index",
                           log=lambda m: None)
    index.update()
    plain = [r.qualname for r in search(index, "load a file as one string", k=10).results]
    reranker = QueryLikelihood(scorer, budget_s=2.5, clock=lambda: now[0])
    got = search(index, "load a file as one string", k=10, reranker=reranker).results
    assert now[0] == 3  # the third pass ended past the budget: no fourth
    assert [r.rerank_score is not None for r in got] == [True] * 3 + [False] * 7
    assert [r.qualname for r in got] == [plain[n] for n in rerank_order([1.0, 2.0, 3.0])] + plain[3:]
    index.close()


def test_the_described_function_moves_up(searcher, exported, tmp_path):
    from plusls.exported import Embedder
    from plusls.indexer.rerankers import load_reranker
    from plusls.indexer.search import rerank_order, search
    from plusls.indexer.workspace_index import WorkspaceIndex

    index = WorkspaceIndex(make_repo(tmp_path / "ws"), Embedder(exported["bert"]), "tiny-bert", tmp_path / "index",
                           log=lambda m: None)
    index.update()
    reranker = load_reranker(str(searcher))
    top = index.store.chunk_counts()["chunks"]  # every chunk a candidate: the tiny random embedder ranks at random
    moved = 0
    for query, (_, name) in WANTED.items():
        plain = [r.qualname for r in search(index, query, k=top).results]
        response = search(index, query, k=top, reranker=reranker, rerank_top=top)
        reranked = [r.qualname for r in response.results]
        assert sorted(reranked) == sorted(plain)  # the same results, reordered
        scores = {r.qualname: r.rerank_score for r in response.results}
        assert max(scores, key=scores.get) == name  # the model finds the query likeliest for the right code
        assert reranked == [plain[n] for n in rerank_order([scores[q] for q in plain])]
        assert reranked.index(name) <= plain.index(name)
        moved += reranked.index(name) < plain.index(name)
    assert moved >= 2  # the random tiny embedder alone does not put them first
    assert "rerank" not in search(index, "read_text", k=5, reranker=reranker).timings_ms
    index.close()


@pytest.mark.asyncio
@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_the_search_command_reranks_and_workspace_symbol_does_not(searcher, exported, tmp_path):
    from lsp_session import init_options, serving, wait_indexed
    from lsprotocol import types as t

    from plusls.indexer.chunker import chunk_file
    from plusls.indexer.rerankers import load_reranker
    from plusls.indexer.search import RERANK_TOP, rerank_order

    workspace = make_repo(tmp_path / "ws")
    texts = {(c.path, c.start_line - 1): c.text for path, text in FILES.items() for c in chunk_file(path, text)}
    model = load_reranker(str(searcher))
    for rerank in (True, False):
        options = {**init_options(exported, searcher), "search": {"rerank": rerank}}
        async with serving(workspace, tmp_path / f"cache-{rerank}", options) as client:
            await wait_indexed(client)
            reordered = 0
            for query in WANTED:
                symbols = (await client.workspace_symbol_async(t.WorkspaceSymbolParams(query=query)))[:RERANK_TOP]
                found = await client.workspace_execute_command_async(
                    t.ExecuteCommandParams("plusls.search", [query, RERANK_TOP]))
                by_symbol, by_command = [s.name for s in symbols], [f["name"] for f in found]
                if rerank:  # the index's order fused with the model's scores of those results
                    at = [(s.container_name, s.location.range.start.line) for s in symbols]
                    scores = model.score(query, [texts[key] for key in at])
                    want = [by_symbol[n] for n in rerank_order(scores)]
                    assert by_command == want
                    reordered += want != by_symbol
                else:  # the setting off: the command answers as workspace/symbol does
                    assert by_command == by_symbol
            assert reordered or not rerank
