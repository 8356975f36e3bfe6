"""The sandbox contains what model-generated code can do wrong, scores it as a failure, and the run goes on."""
from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from eval_helpers import CAN_ISOLATE

from plusls.evaluation import sandbox as sandbox_module
from plusls.evaluation.errors import EvalError
from plusls.evaluation.sandbox import NOBODY, Limits, Sandbox

LIMITS = Limits(timeout_s=2.0, memory_bytes=512 << 20, processes=16)
MODES = [pytest.param("namespace", marks=pytest.mark.skipif(not CAN_ISOLATE, reason="needs root on Linux")),
         "guard"]

INFINITE_LOOP = "while True:\n    pass\n"
MEMORY_BOMB = "blocks = []\nwhile True:\n    blocks.append(bytearray(50 * 2**20))\n"
FORK_BOMB = "import os\nwhile True:\n    try:\n        os.fork()\n    except Exception:\n        pass\n"
NETWORK = "import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=1).close()\n"


def uid_processes(uid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and entry.stat().st_uid == uid:
                pids.append(int(entry.name))
        except OSError:
            pass
    return pids


@pytest.fixture(scope="module", params=MODES)
def sandbox(request) -> Sandbox:
    return Sandbox(LIMITS, mode=request.param)


def assert_still_works(sandbox: Sandbox) -> None:
    out = sandbox.run("import math\nprint(math.factorial(5))")
    assert out.status == "passed" and out.stdout.strip() == "120"


def test_a_correct_program_passes_and_a_wrong_one_fails(sandbox):
    assert sandbox.run("assert sum(range(4)) == 6").passed
    out = sandbox.run("assert sum(range(4)) == 7")
    assert out.status == "failed" and out.error == "AssertionError"
    out = sandbox.run("def f(:\n")
    assert out.status == "failed" and "SyntaxError" in out.error
    out = sandbox.run("import sys\nsys.exit(0)")  # leaving early is not finishing the tests
    assert out.status == "failed"


def test_infinite_loop_times_out(sandbox):
    start = time.monotonic()
    out = sandbox.run(INFINITE_LOOP)
    assert out.status == "timeout" and not out.passed
    assert time.monotonic() - start < LIMITS.timeout_s + 3
    assert_still_works(sandbox)


def test_memory_bomb_is_stopped_by_the_limit(sandbox):
    out = sandbox.run(MEMORY_BOMB)
    assert out.status == "failed" and "MemoryError" in out.error
    assert_still_works(sandbox)


@pytest.mark.slow  # process storms
def test_fork_bomb_is_contained_and_leaves_no_process(sandbox):
    start = time.monotonic()
    out = sandbox.run(FORK_BOMB)
    assert not out.passed and out.status in ("timeout", "failed")
    assert time.monotonic() - start < LIMITS.timeout_s + 3
    if sandbox.drop_uid:
        time.sleep(0.2)
        assert uid_processes(NOBODY) == []  # the whole PID namespace died with the program
    assert_still_works(sandbox)


def test_network_is_unreachable(sandbox):
    out = sandbox.run(NETWORK)
    assert out.status == "failed"
    assert any(word in out.error for word in ("unreachable", "not allowed", "Errno")), out.error
    assert_still_works(sandbox)


def test_files_outside_its_folder_cannot_be_deleted_or_written(sandbox, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # even a world-writable folder outside the sandbox stays untouched
    victim = shared / "victim.txt"
    victim.write_text("keep me")
    victim.chmod(0o666)
    out = sandbox.run(f"import os, shutil\nos.remove({str(victim)!r})\n")
    assert out.status == "failed"
    out = sandbox.run(f"import shutil\nshutil.rmtree({str(shared)!r})\n")
    assert out.status == "failed"
    out = sandbox.run(f"open({str(shared / 'new.txt')!r}, 'w').write('x')\n")
    assert out.status == "failed"
    assert victim.read_text() == "keep me" and not (shared / "new.txt").exists()
    assert_still_works(sandbox)


@pytest.mark.skipif(not CAN_ISOLATE, reason="needs root on Linux")
def test_namespace_mode_gives_each_program_a_private_tmp_and_no_root():
    sandbox = Sandbox(LIMITS, mode="namespace")
    marker = f"plusls-sandbox-escape-{os.getpid()}.txt"
    code = (f"import os\nopen('/tmp/{marker}', 'w').write('x')\nopen('here.txt', 'w').write('ok')\n"
            "assert os.getuid() != 0 and os.listdir('.') == [] or 'here.txt' in os.listdir('.')\n"
            "print(sorted(os.listdir('/tmp')))")
    out = sandbox.run(code)
    assert out.passed, out.stderr
    assert marker in out.stdout  # it could write to its own /tmp ...
    assert not Path("/tmp", marker).exists()  # ... which is not the machine's /tmp
    assert sandbox.run("import os\nassert os.getuid() == 65534 and os.getpid() < 10").passed


# Run by a virtualenv's python: imports plusls from this interpreter's site folders, then sandboxes a program
# that imports a module only that virtualenv has.
VENV_SCRIPT = """
import json, site, sys
for folder in json.loads(sys.argv[1]):
    site.addsitedir(folder)
from plusls.evaluation.sandbox import Limits, Sandbox
code = (
    "import os, plusls_probe\\n"
    "print(plusls_probe.VALUE, os.access(plusls_probe.__file__, os.W_OK))\\n"
)
out = Sandbox(Limits(timeout_s=10.0), mode="namespace").run(code)
print(json.dumps([out.status, out.stdout, out.stderr]))
"""


@pytest.mark.parametrize("parent, mode", [("/tmp", 0o755), ("/dev/shm", 0o700)], ids=["tmp-open", "shm-private"])
def test_namespace_mode_sees_a_virtualenv_inside_a_folder_it_masks(parent, mode):
    """/tmp and /dev/shm become private in the sandbox; an interpreter installed there must still import."""
    if not CAN_ISOLATE:
        pytest.skip("namespace mode needs root on Linux")
    if not os.path.isdir(parent) or os.path.islink(parent):
        pytest.skip(f"{parent} is not a folder here")
    home = tempfile.mkdtemp(prefix="plusls-venv-", dir=parent)
    try:
        os.chmod(home, mode)  # readable by all, as a CI checkout; or private, as mkdtemp leaves it
        venv = Path(home, "venv")
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
        python = str(venv / "bin" / "python")
        found = subprocess.run([python, "-c", "import site; print(site.getsitepackages()[0])"],
                               check=True, capture_output=True, text=True, timeout=60)
        Path(found.stdout.strip(), "plusls_probe.py").write_text("VALUE = 'from-the-venv'\n")
        ran = subprocess.run([python, "-c", VENV_SCRIPT, json.dumps(site.getsitepackages())],
                             capture_output=True, text=True, timeout=120)
        assert ran.returncode == 0, ran.stderr
        status, stdout, stderr = json.loads(ran.stdout.splitlines()[-1])
        assert (status, stdout.strip()) == ("passed", "from-the-venv False"), stderr
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_namespace_mode_refuses_an_interpreter_that_is_a_masked_place_itself(monkeypatch):
    if not os.path.isdir("/tmp") or os.path.islink("/tmp"):
        pytest.skip("/tmp is not a folder here")
    monkeypatch.setattr(sandbox_module, "LIBRARY_DIRS", [*sandbox_module.LIBRARY_DIRS, "/tmp"])
    with pytest.raises(EvalError, match="install Python or the virtualenv elsewhere"):
        Sandbox(LIMITS, mode="namespace")


@pytest.mark.slow  # process storms
def test_the_harness_goes_on_after_each_kind_of_attack(sandbox, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    codes = [INFINITE_LOOP, MEMORY_BOMB, FORK_BOMB, NETWORK, f"import os\nos.remove({str(victim)!r})\n",
             "print('fine')"]
    statuses = [sandbox.run(c).status for c in codes]
    assert statuses[:5] == ["timeout", "failed", statuses[2], "failed", "failed"]
    assert statuses[2] in ("timeout", "failed") and statuses[5] == "passed"
    assert victim.exists()
