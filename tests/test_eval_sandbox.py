"""The sandbox contains what model-generated code can do wrong, scores it as a failure, and the run goes on."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from eval_helpers import CAN_ISOLATE

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
