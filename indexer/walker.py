"""Which workspace files get indexed: .gitignore (nested), default excludes, secrets, binary and size limits."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterator

import pathspec

DEFAULT_EXCLUDED_DIRS = {
    ".git", ".hg", ".svn", "node_modules", ".venv", "venv", "env", ".env", "__pycache__", ".mypy_cache",
    ".pytest_cache", ".ruff_cache", ".tox", ".nox", "build", "dist", "target", "out", ".next", ".nuxt",
    ".gradle", ".idea", ".cache", "site-packages", ".eggs", "bower_components", "vendor", ".plusls",
}
SECRET_NAMES = re.compile(
    r"""^(\.env(\..*)?|.*\.(pem|key|p12|pfx|crt|cer|der|csr|jks|keystore|kdbx|gpg|asc|ovpn)
        |id_(rsa|dsa|ecdsa|ed25519)(\.pub)?|\.netrc|\.pgpass|\.npmrc|\.pypirc|\.htpasswd|\.git-credentials
        |credentials(\..*)?|.*secrets?\.(json|ya?ml|toml|ini|txt)|.*\.tfstate(\.backup)?)$""",
    re.X | re.I,
)
SECRET_CONTENT = re.compile(
    rb"-----BEGIN ([A-Z]+ )*PRIVATE KEY-----|AKIA[0-9A-Z]{16}|aws_secret_access_key|gh[pousr]_[A-Za-z0-9]{36}"
    rb"|xox[abprs]-[A-Za-z0-9-]{10,}|sk-[A-Za-z0-9]{32,}|-----BEGIN PGP PRIVATE KEY BLOCK-----"
)
DEFAULT_MAX_BYTES = 1_000_000


def check_content(name: str, data: bytes, max_bytes: int) -> str | None:
    """The reason to skip a file with this name and content, or None to index it."""
    if SECRET_NAMES.match(name):
        return "secret"
    if len(data) > max_bytes:
        return "too-large"
    if b"\0" in data[:8192]:
        return "binary"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return "non-utf8"
    if SECRET_CONTENT.search(data):
        return "secret"
    return None


class IgnoreRules:
    """Nested .gitignore files: each applies below its folder; a deeper file overrides a shallower one."""

    def __init__(self, root: Path):
        self.root = root
        self.specs: dict[str, pathspec.GitIgnoreSpec | None] = {}

    def _spec(self, rel_dir: str) -> pathspec.GitIgnoreSpec | None:
        if rel_dir not in self.specs:
            f = self.root / rel_dir / ".gitignore"
            try:
                self.specs[rel_dir] = pathspec.GitIgnoreSpec.from_lines(f.read_text(errors="replace").splitlines())
            except OSError:
                self.specs[rel_dir] = None
        return self.specs[rel_dir]

    def ignored(self, rel: str, is_dir: bool) -> bool:
        parts = rel.split("/")
        verdict = False
        for depth in range(len(parts)):  # root's .gitignore first, the file's own folder last
            spec = self._spec("/".join(parts[:depth]))
            if spec is None:
                continue
            sub = "/".join(parts[depth:]) + ("/" if is_dir else "")
            result = spec.check_file(sub).include
            if result is not None:
                verdict = result
        return verdict


def path_allowed(root: Path, rel: str) -> bool:
    """Whether walk() would offer this one file for indexing (the same rules, for re-indexing a saved file)."""
    parts = rel.split("/")
    if any(p in DEFAULT_EXCLUDED_DIRS for p in parts[:-1]) or SECRET_NAMES.match(parts[-1]):
        return False
    rules = IgnoreRules(root)
    return not any(rules.ignored("/".join(parts[: i + 1]), i < len(parts) - 1) for i in range(len(parts)))


def walk(root: Path, max_bytes: int = DEFAULT_MAX_BYTES, exclude_dirs: set[str] | None = None) -> Iterator[
        tuple[str, str | None, Path]]:
    """Yield (relative path, skip reason or None, absolute path) for every file under root, in a stable order.
    Ignored folders are not entered; symlinks are not followed."""
    rules = IgnoreRules(root)
    excluded = DEFAULT_EXCLUDED_DIRS if exclude_dirs is None else exclude_dirs
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root).replace(os.sep, "/")
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        keep = []
        for d in sorted(dirnames):
            full = Path(dirpath) / d
            if d in excluded or full.is_symlink() or rules.ignored(rel_dir + d, True):
                continue
            keep.append(d)
        dirnames[:] = keep
        for name in sorted(filenames):
            rel = rel_dir + name
            full = Path(dirpath) / name
            if full.is_symlink() or not full.is_file():
                yield rel, "not-regular", full
            elif rules.ignored(rel, False):
                yield rel, "gitignored", full
            elif SECRET_NAMES.match(name):
                yield rel, "secret", full
            else:
                yield rel, None, full
