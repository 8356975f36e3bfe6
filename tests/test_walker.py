"""What gets indexed: .gitignore (nested, negation), default excludes, secrets, binary, encoding, size."""
from __future__ import annotations

from collections import Counter

from fixture_repo import make_repo

from plusls.indexer.walker import check_content, walk


def test_walk_honours_gitignore_excludes_and_secrets(tmp_path):
    root = make_repo(tmp_path)
    entries = {rel: reason for rel, reason, _ in walk(root)}
    indexed = {rel for rel, reason in entries.items() if reason is None}
    assert "src/files.py" in indexed and "web/app.js" in indexed and "docs/notes.md" in indexed
    assert entries["debug.log"] == "gitignored"
    assert entries["src/generated_api.py"] == "gitignored"  # nested .gitignore
    assert "src/generated_keep.py" in indexed  # its negation
    assert not any(rel.startswith(("build/", "node_modules/")) for rel in entries)  # never entered
    for secret in (".env", ".env.production", "deploy/server.pem"):
        assert entries[secret] == "secret"


def test_content_checks():
    assert check_content("a.py", b"x = 1\n", 100) is None
    assert check_content("a.py", b"x" * 101, 100) == "too-large"
    assert check_content("logo.png", b"\x89PNG\0\0", 100) == "binary"
    assert check_content("l.txt", "caf\xe9".encode("latin-1"), 100) == "non-utf8"
    assert check_content("settings.py", b"K='''-----BEGIN RSA PRIVATE KEY-----\nabc'''", 1000) == "secret"
    assert check_content("conf.py", b"aws = 'AKIAABCDEFGHIJKLMNOP'", 1000) == "secret"
    assert check_content("id_ed25519", b"whatever", 1000) == "secret"


def test_skips_are_counted_by_reason(tmp_path):
    root = make_repo(tmp_path)
    reasons = Counter(r for _, r, _ in walk(root) if r)
    assert reasons["gitignored"] == 2 and reasons["secret"] == 3
