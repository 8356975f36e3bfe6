"""`plusls train data`: a training corpus mined from the permissively licensed Python code on this machine.

Sources are the standard library (PSF) and the installed distributions whose package metadata declares PSF, MIT,
BSD or Apache-2.0; anything else (GPL, MPL, unknown, ...) and vendored copies are skipped. Every file is split with
the indexer's tree-sitter chunker, and three kinds of samples come out, one jsonl file per kind and split:

- pairs:     (docstring, code) of each documented function or method (contrastive / matching training)
- summary:   (code without its docstring -> the docstring's first sentence) (code -> docstring summarization)
- fim:       (prefix, suffix, middle) cut at line boundaries or around one expression (fill-in-the-middle)

Whole packages are held out for evaluation, and nothing held out reaches the training split: held-out files are
read first and any training file or function with the same content hash is dropped (vendored or copied code).
"""
from __future__ import annotations

import hashlib
import json
import random
import re
import sys
import sysconfig
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from importlib.metadata import distributions
from pathlib import Path
from typing import Callable, Iterable

from plusls.common.paths import cache_home
from plusls.indexer.chunker import chunk_file
from plusls.indexer.languages import parser_for

LICENCES = ("PSF", "MIT", "BSD", "Apache-2.0")
# Held out for evaluation by default: mid-sized packages of different domains (whole packages, never split).
HELD_OUT = ("stdlib:email", "stdlib:json", "stdlib:http", "stdlib:logging", "requests", "Jinja2", "pyparsing",
            "python-dateutil", "idna", "networkx")
SKIP_DIRS = {"test", "tests", "testing", "idle_test", "_vendor", "vendor", "vendored", "extern", "_vendored",
             "__pycache__", "site-packages", "dist-packages", "ensurepip", "lib2to3", "idlelib", "turtledemo"}
MAX_FILE_BYTES = 400_000
MAX_CODE_CHARS = 4000  # longer functions are windowed by the chunker; they give no summary pair
FIM_CONTEXT_CHARS = 1500
TOKEN = re.compile(r"\w+|[^\w\s]")
Log = Callable[[str], None]


@dataclass
class Source:
    package: str  # "stdlib:json", or the distribution name
    licence: str  # one of LICENCES, or what was found when it is not permissive
    root: Path
    files: list[Path] = field(default_factory=list)


# --- licences --------------------------------------------------------------------------------------------------

def licence_family(text: str) -> str | None:
    """'MIT License' -> 'MIT', 'BSD-3-Clause' -> 'BSD', 'Apache 2.0' -> 'Apache-2.0', 'PSF-2.0' -> 'PSF';
    None for anything else (GPL, MPL, proprietary, unknown)."""
    t = text.strip().lower()
    if not t:
        return None
    if re.search(r"\b(l?gpl|mpl|mozilla|gnu|eupl|cddl|epl|agpl|creative commons|cc-by|proprietary)\b", t):
        return None
    if t in ("psf", "psf-2.0", "python-2.0", "cnri-python") or "python software foundation" in t:
        return "PSF"
    if re.fullmatch(r"(the )?mit( license)?|expat|mit-0", t):
        return "MIT"
    if re.fullmatch(r"0?bsd(-[234]-clause)?(-[a-z]+)?( license)?|(new |simplified |modified )?bsd( license)?|"
                    r"[234]-clause bsd( license)?|bsd [234]-clause( license)?", t):
        return "BSD"
    if re.fullmatch(r"apache(-2\.0| 2\.0| software license| license,? version 2\.0| 2\.0 license|"
                    r" license 2\.0)?", t):
        return "Apache-2.0"
    return None


def spdx_family(expression: str) -> str | None:
    """An SPDX expression: an OR takes any permissive alternative, an AND needs every part permissive."""
    expression = expression.replace("(", " ").replace(")", " ")
    for alternative in re.split(r"\s+OR\s+", expression):
        parts = [re.sub(r"\s+WITH\s+.*$", "", p).strip() for p in re.split(r"\s+AND\s+", alternative)]
        families = [licence_family(p) for p in parts]
        if families and all(families):
            return families[0]
    return None


def distribution_licence(metadata) -> str:
    """The licence family of an installed distribution from its metadata, or 'other: ...' when not permissive."""
    expression = metadata.get("License-Expression")
    if expression:
        return spdx_family(expression) or f"other: {expression[:60]}"
    classifiers = [c.split("::")[-1].strip() for c in metadata.get_all("Classifier") or []
                   if c.startswith("License ::")]
    families = [licence_family(c) for c in classifiers]
    if families and all(families):
        return families[0]
    field_text = (metadata.get("License") or "").strip()
    short = field_text.split("\n")[0][:80]
    family = licence_family(short) or spdx_family(short) if short and len(field_text) < 200 else None
    if family:
        return family
    return f"other: {'; '.join(classifiers) or short or 'none declared'}"[:80]


# --- sources ---------------------------------------------------------------------------------------------------

def _keep(path: Path, root: Path) -> bool:
    parts = path.relative_to(root).parts
    return path.suffix == ".py" and not any(p in SKIP_DIRS or p.startswith("test_") for p in parts[:-1]) \
        and not parts[-1].startswith("test_")


def stdlib_sources(root: Path | None = None) -> list[Source]:
    """One source per top-level module or package of the standard library (all PSF)."""
    root = Path(root or sysconfig.get_paths()["stdlib"])
    units: dict[str, Source] = {}
    for path in sorted(root.rglob("*.py")):
        if not _keep(path, root):
            continue
        top = path.relative_to(root).parts[0].removesuffix(".py")
        units.setdefault(top, Source(f"stdlib:{top}", "PSF", root)).files.append(path)
    return list(units.values())


def installed_sources(site: Path | None = None) -> list[Source]:
    """One source per installed distribution whose files live in `site` (the venv's site-packages)."""
    site = Path(site or sysconfig.get_paths()["purelib"]).resolve()
    out = []
    for dist in distributions(path=[str(site)]):
        files = []
        for f in dist.files or []:
            path = Path(str(dist.locate_file(f))).resolve()
            if path.suffix == ".py" and site in path.parents and _keep(path, site):
                files.append(path)
        if files:
            out.append(Source(dist.metadata["Name"], distribution_licence(dist.metadata), site, sorted(files)))
    return sorted(out, key=lambda s: s.package.lower())


# --- samples -----------------------------------------------------------------------------------------------------

def first_sentence(docstring: str) -> str:
    """The summary line of a docstring: its first paragraph up to the first sentence end, on one line."""
    paragraph = re.split(r"\n\s*\n", docstring.strip(), maxsplit=1)[0]
    text = " ".join(paragraph.split())
    m = re.search(r"(?<=[.!?])\s+(?=[A-Z(`'\"])", text)
    return text[: m.start()] if m else text


def usable_summary(summary: str) -> bool:
    words = summary.split()
    return 3 <= len(words) <= 40 and not re.match(r"^(:|>>>|\.\.|@|Args|Parameters|Returns|TODO|XXX|-)", summary) \
        and "://" not in summary and summary[0].isalpha()


def strip_docstring(code: str) -> str | None:
    """The function's code with its docstring statement removed (None when it cannot be found)."""
    src = code.encode("utf-8")
    tree = parser_for("python").parse(src)
    node = tree.root_node
    while node is not None and node.type != "function_definition":
        node = next((c for c in node.named_children if c.type in ("function_definition", "decorated_definition")),
                    None) or (node.named_children[-1] if node.type == "decorated_definition" else None)
    body = node.child_by_field_name("body") if node is not None else None
    if body is None or not body.named_children:
        return None
    first = body.named_children[0]
    if first.type != "expression_statement" or first.named_children[0].type != "string":
        return None
    start = src.rfind(b"\n", 0, first.start_byte) + 1  # the docstring's whole lines
    end = src.find(b"\n", first.end_byte)
    end = len(src) if end < 0 else end + 1
    out = (src[:start] + src[end:]).decode("utf-8", "replace").rstrip()
    if len(out.strip().split("\n")) < 2:  # a body that was only the docstring
        return None
    return out


def code_hash(code: str) -> str:
    return hashlib.sha256(" ".join(code.split()).encode()).hexdigest()


def fim_samples(text: str, rng: random.Random, chunks, per_file: int) -> list[dict]:
    """Fill-in-the-middle cuts of one file: 1-3 whole lines, or one expression inside a line."""
    lines = text.splitlines(keepends=True)
    out = []
    funcs = [c for c in chunks if c.kind in ("function", "method") and c.end_line - c.start_line >= 2]
    for _ in range(per_file):
        if not funcs:
            break
        c = rng.choice(funcs)
        if rng.random() < 0.7:  # whole lines inside a function body
            a = rng.randint(c.start_line, c.end_line - 1)  # 1-based; skip the def line
            b = min(c.end_line, a + rng.randint(1, 3))
            start, end = sum(map(len, lines[:a])), sum(map(len, lines[:b]))
            kind = "lines"
        else:  # one expression: a call's arguments, a right-hand side, a return value, a condition
            span = _expression_span(text, c, rng)
            if span is None:
                continue
            start, end = span
            kind = "expression"
        middle = text[start:end]
        if not middle.strip():
            continue
        out.append({"prefix": text[max(0, start - FIM_CONTEXT_CHARS) : start], "middle": middle,
                    "suffix": text[end : end + FIM_CONTEXT_CHARS], "cut": kind})
    return out


_EXPRESSIONS = {"argument_list", "call", "binary_operator", "comparison_operator", "boolean_operator", "subscript",
                "list_comprehension", "conditional_expression"}


def _expression_span(text: str, chunk, rng: random.Random) -> tuple[int, int] | None:
    if chunk.start_byte < 0:
        return None
    src = text.encode("utf-8")
    tree = parser_for("python").parse(src)
    found = []
    stack = [tree.root_node.descendant_for_byte_range(chunk.start_byte, chunk.end_byte)]
    while stack:
        node = stack.pop()
        one_line = node.start_point[0] == node.end_point[0]
        if node.type in _EXPRESSIONS and one_line and node.end_byte - node.start_byte > 3:
            found.append(node)
        stack.extend(node.named_children)
    if not found:
        return None
    node = rng.choice(found)
    # byte offsets -> character offsets
    return len(src[: node.start_byte].decode("utf-8", "replace")), len(src[: node.end_byte].decode("utf-8", "replace"))


# --- the corpus --------------------------------------------------------------------------------------------------

@dataclass
class Stats:
    packages: dict = field(default_factory=lambda: defaultdict(Counter))  # licence -> counters
    skipped_licences: Counter = field(default_factory=Counter)  # licence text -> packages skipped
    duplicates: Counter = field(default_factory=Counter)
    held_out: list = field(default_factory=list)

    def add(self, split: str, licence: str, **counts: int) -> None:
        for k, v in counts.items():
            self.packages[f"{split}/{licence}"][k] += v

    def as_dict(self) -> dict:
        return {"by_split_and_licence": {k: dict(v) for k, v in sorted(self.packages.items())},
                "skipped_licences": dict(self.skipped_licences.most_common()),
                "duplicates_dropped": dict(self.duplicates), "held_out_packages": sorted(self.held_out)}


def build_corpus(out: Path, sources: Iterable[Source], held_out: Iterable[str] = HELD_OUT, seed: int = 0,
                 fim_per_file: int = 1, log: Log = print) -> dict:
    """Write pairs/summary/fim jsonl files for the train and heldout splits into `out`; return the statistics."""
    out.mkdir(parents=True, exist_ok=True)
    held = {h.lower() for h in held_out}
    sources = list(sources)
    stats = Stats()
    permissive = []
    for s in sources:
        if s.licence in LICENCES:
            permissive.append(s)
        else:
            stats.skipped_licences[s.licence] += 1
            stats.add("skipped", "other", packages=1, files=len(s.files))
    # Held-out packages first, so their content can be kept out of the training split.
    permissive.sort(key=lambda s: (s.package.lower() not in held, s.package.lower()))
    seen_files: set[str] = set()
    seen_code: set[str] = set()
    writers = {f"{kind}.{split}": open(out / f"{kind}.{split}.jsonl.tmp", "w")
               for kind in ("pairs", "summary", "fim") for split in ("train", "heldout")}
    t0 = time.perf_counter()
    try:
        for n, src in enumerate(permissive, 1):
            split = "heldout" if src.package.lower() in held else "train"
            if split == "heldout":
                stats.held_out.append(src.package)
            counts = Counter(packages=1)
            for path in src.files:
                try:
                    raw = path.read_bytes()
                except OSError:
                    continue
                if len(raw) > MAX_FILE_BYTES:
                    continue
                digest = hashlib.sha256(raw).hexdigest()
                if digest in seen_files:
                    stats.duplicates["files"] += 1
                    continue
                seen_files.add(digest)
                text = raw.decode("utf-8", "replace")
                rel = path.relative_to(src.root).as_posix()
                rng = random.Random(f"{seed}:{digest}")
                chunks = chunk_file(rel, text)
                counts["files"] += 1
                counts["lines"] += text.count("\n") + 1
                counts["tokens"] += len(TOKEN.findall(text))
                for c in chunks:
                    if c.kind not in ("function", "method") or not c.docstring or c.start_byte < 0:
                        continue
                    if len(c.text) > MAX_CODE_CHARS:
                        continue
                    h = code_hash(c.text)
                    if h in seen_code:
                        stats.duplicates["functions"] += 1
                        continue
                    seen_code.add(h)
                    meta = {"package": src.package, "licence": src.licence, "path": rel, "name": c.qualname}
                    writers[f"pairs.{split}"].write(json.dumps({**meta, "docstring": c.docstring,
                                                                "code": c.text}) + "\n")
                    counts["pairs"] += 1
                    summary = first_sentence(c.docstring)
                    code = strip_docstring(c.text) if usable_summary(summary) else None
                    if code:
                        writers[f"summary.{split}"].write(json.dumps({**meta, "code": code,
                                                                      "summary": summary}) + "\n")
                        counts["summary"] += 1
                for sample in fim_samples(text, rng, chunks, fim_per_file):
                    writers[f"fim.{split}"].write(json.dumps({"package": src.package, "licence": src.licence,
                                                              "path": rel, **sample}) + "\n")
                    counts["fim"] += 1
            stats.add(split, src.licence, **counts)
            if n % 10 == 0 or n == len(permissive):
                log(f"{n}/{len(permissive)} packages, {len(seen_files)} files, {time.perf_counter() - t0:.0f}s")
    finally:
        for w in writers.values():
            w.close()
    for name in writers:
        (out / f"{name}.jsonl.tmp").replace(out / f"{name}.jsonl")
    result = stats.as_dict()
    result["seed"], result["fim_per_file"] = seed, fim_per_file
    (out / "stats.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def default_corpus_dir() -> Path:
    return cache_home() / "training" / "corpus"


def format_stats(stats: dict) -> str:
    rows = ["| split | licence | packages | files | lines | tokens | (docstring, code) pairs | summary pairs "
            "| FIM samples |", "|---|---|---|---|---|---|---|---|---|"]
    for key, c in stats["by_split_and_licence"].items():
        split, licence = key.split("/", 1)
        rows.append(f"| {split} | {licence} | {c.get('packages', 0)} | {c.get('files', 0):,} | {c.get('lines', 0):,} "
                    f"| {c.get('tokens', 0):,} | {c.get('pairs', 0):,} | {c.get('summary', 0):,} "
                    f"| {c.get('fim', 0):,} |")
    return "\n".join(rows)


def main(out: Path | None = None, held_out: Iterable[str] = HELD_OUT, seed: int = 0, log: Log = print) -> dict:
    out = Path(out) if out else default_corpus_dir()
    sources = stdlib_sources() + installed_sources()
    log(f"{len(sources)} sources (stdlib modules and installed distributions); writing {out}")
    stats = build_corpus(out, sources, held_out, seed, log=log)
    log(format_stats(stats))
    return stats


if __name__ == "__main__":
    main(log=lambda m: print(m, file=sys.stderr))
