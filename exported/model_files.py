"""Opening a model directory for serving: manifest check, tokenizer, sessions. No torch here."""
from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer

from .errors import ModelDirError
from .manifest import ONNX_FILES, Manifest, read_manifest
from .sessions import RuntimeOptions, make_session, uses_cuda


class ModelFiles:
    """A verified model directory of one kind, with its tokenizer and one session per ONNX file."""

    def __init__(self, directory: str | Path, kind: str, options: RuntimeOptions | None = None, verify: bool = True):
        self.directory = Path(directory)
        self.options = options or RuntimeOptions()
        self.manifest: Manifest = read_manifest(self.directory, verify=verify)
        if self.manifest.kind != kind:
            raise ModelDirError(f"{self.directory} holds a {self.manifest.kind} model, not a {kind} model")
        self.tokenizer = load_tokenizer(self.directory / "tokenizer.json")
        self.sessions = {
            role: make_session(self.directory / self.manifest.onnx_file(role), self.options)
            for role in ONNX_FILES[self.manifest.kind]
        }

    @property
    def providers(self) -> list[str]:
        """The providers the sessions actually run on (first one does the work)."""
        return next(iter(self.sessions.values())).get_providers()

    @property
    def on_cuda(self) -> bool:
        return uses_cuda(next(iter(self.sessions.values())))

    @property
    def io_binding(self) -> bool:
        return self.on_cuda if self.options.io_binding is None else self.options.io_binding


def load_tokenizer(path: Path) -> Tokenizer:
    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as e:
        raise ModelDirError(f"cannot read {path}: {e}; re-export the model") from e
    # Padding and truncation are the runtime's job, per call; a tokenizer.json may carry its own.
    tok.no_padding()
    tok.no_truncation()
    return tok
