"""plusls.common.dirs: putting a finished model directory in place (export) and swapping two (train refresh)."""
from __future__ import annotations

import ctypes
from pathlib import Path

import pytest

from plusls.common import dirs


def make(path: Path, text: str) -> Path:
    path.mkdir()
    (path / "manifest.json").write_text(text)
    return path


@pytest.fixture(params=["renameat2", "renames"])
def swap_kind(request, monkeypatch):
    """Each test runs with the one-step Linux exchange and with the fallback of other systems."""
    if request.param == "renames":
        def no_libc(*args, **kwargs):
            raise OSError("no renameat2 here")

        monkeypatch.setattr(ctypes, "CDLL", no_libc)
    return request.param


def test_replace_dir_puts_the_new_directory_in_place_and_removes_the_old(tmp_path, swap_kind):
    out = make(tmp_path / "model", "old")
    (out / "extra.onnx").write_text("old only")
    new = make(tmp_path / "work", "new")
    dirs.replace_dir(new, out)
    assert (out / "manifest.json").read_text() == "new"
    assert not (out / "extra.onnx").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # nothing left beside it


def test_replace_dir_creates_a_missing_target(tmp_path, swap_kind):
    dirs.replace_dir(make(tmp_path / "work", "new"), tmp_path / "model")
    assert (tmp_path / "model" / "manifest.json").read_text() == "new"


def test_replace_dir_leaves_the_old_directory_intact_when_the_new_one_cannot_go_in(tmp_path, swap_kind):
    out = make(tmp_path / "model", "old")
    with pytest.raises(OSError):
        dirs.replace_dir(tmp_path / "missing", out)
    assert (out / "manifest.json").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_exchange_swaps_two_directories_and_twice_puts_them_back(tmp_path, swap_kind):
    a, b = make(tmp_path / "staged", "new"), make(tmp_path / "model", "old")
    dirs.exchange(a, b)
    assert (b / "manifest.json").read_text() == "new" and (a / "manifest.json").read_text() == "old"
    dirs.exchange(a, b)
    assert (b / "manifest.json").read_text() == "old" and (a / "manifest.json").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "staged"]
