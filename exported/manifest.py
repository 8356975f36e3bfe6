"""manifest.json: what a model directory holds, how it was made, and how to check it is intact."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import ModelDirError

MANIFEST = "manifest.json"
STAMPS = ".verified.json"  # size + mtime of each file when its sha256 last matched (see read_manifest)
FORMAT_VERSION = 1
KINDS = ("causal-lm", "seq2seq", "embedding", "matching")
# ONNX files each kind needs, by role.
ONNX_FILES = {
    "causal-lm": {"decoder": "model.onnx"},
    "seq2seq": {"encoder": "encoder_model.onnx", "decoder": "decoder_model_merged.onnx"},
    "embedding": {"encoder": "model.onnx"},
    "matching": {"encoder": "model.onnx"},  # (text, code) pair -> match logit (exported/matching.py)
}


@dataclass
class Manifest:
    kind: str
    architecture: str
    model_type: str
    files: dict[str, str]  # file name -> sha256
    special_tokens: dict[str, Any]  # bos/eos/pad/unk -> {"token", "id"}; "fim" -> {...} or None
    max_length: int
    opset: int
    quantization: str | None = None
    parity: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)  # kind-specific: decoder_start_token_id, embed dim, pooling
    source: str = ""
    created: str = ""
    plusls_version: str = ""
    format: int = FORMAT_VERSION

    def onnx_file(self, role: str) -> str:
        return ONNX_FILES[self.kind][role]

    def token_id(self, name: str) -> int | None:
        tok = self.special_tokens.get(name)
        return None if tok is None else tok["id"]

    @property
    def fim(self) -> dict[str, Any] | None:
        return self.special_tokens.get("fim")

    def write(self, directory: Path) -> None:
        (Path(directory) / MANIFEST).write_text(json.dumps(asdict(self), indent=2) + "\n")


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def checksum_files(directory: Path) -> dict[str, str]:
    """sha256 of every file a model directory ships (everything but the manifest itself)."""
    directory = Path(directory)
    return {
        p.name: sha256_file(p)
        for p in sorted(directory.iterdir())
        if p.is_file() and p.name not in (MANIFEST, STAMPS) and not p.name.startswith(f".{STAMPS}")
    }


def file_stamp(path: Path) -> list[int]:
    """Size and mtime: what says a file is unchanged since it was last hashed."""
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def _read_stamps(directory: Path) -> dict:
    try:
        return json.loads((directory / STAMPS).read_text())
    except (OSError, ValueError):
        return {}


def write_stamps(directory: Path, manifest: Manifest) -> None:
    """Remember each file's size and mtime with the digest it was checked against (best effort: a read-only
    install just checks the digests at every load)."""
    stamps = {name: [*file_stamp(directory / name), digest] for name, digest in manifest.files.items()}
    try:
        tmp = directory / f".{STAMPS}.tmp"
        tmp.write_text(json.dumps(stamps))
        tmp.replace(directory / STAMPS)
    except OSError:
        pass


def read_manifest(directory: str | Path, verify: bool | str = True) -> Manifest:
    """Load and check a model directory's manifest. verify="full": every file's sha256 (doctor, export, install);
    True: the same, except files whose size and mtime match those recorded after their last full check (every
    load: a model of a gigabyte is not hashed each time); False: presence only."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ModelDirError(f"model directory {directory} does not exist; export one with `plusls export`")
    path = directory / MANIFEST
    if not path.is_file():
        raise ModelDirError(
            f"{directory} has no {MANIFEST}: it is not a plusls model directory "
            f"(export a checkpoint into it with `plusls export SRC --kind KIND --out {directory}`)"
        )
    try:
        raw = json.loads(path.read_text())
        manifest = Manifest(**raw)
    except (json.JSONDecodeError, TypeError) as e:
        raise ModelDirError(f"{path} is corrupt ({e}); re-export the model with `plusls export`") from e
    if manifest.format != FORMAT_VERSION:
        raise ModelDirError(f"{path} has format {manifest.format}, this plusls reads {FORMAT_VERSION}; re-export")
    if manifest.kind not in KINDS:
        raise ModelDirError(f"{path}: unknown kind {manifest.kind!r} (expected one of {', '.join(KINDS)})")
    needed = list(ONNX_FILES[manifest.kind].values()) + ["tokenizer.json"]
    for name in needed:
        if name not in manifest.files:
            raise ModelDirError(f"{path} does not list {name}; re-export the model")
    stamps = _read_stamps(directory) if verify is True else {}
    hashed = False
    for name, digest in manifest.files.items():
        f = directory / name
        if not f.is_file():
            raise ModelDirError(f"{directory} is incomplete: {name} is missing; re-export the model")
        if not verify or stamps.get(name) == [*file_stamp(f), digest]:
            continue
        hashed = True
        if sha256_file(f) != digest:
            raise ModelDirError(
                f"{f} is corrupt (sha256 differs from the manifest); re-export the model with `plusls export`"
            )
    if hashed:
        write_stamps(directory, manifest)
    return manifest
