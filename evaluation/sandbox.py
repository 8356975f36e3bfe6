"""Run untrusted (model-generated) Python in a separate, isolated process and say whether it finished cleanly.

Each run gets a new process (sandbox_child.py) with a wall-clock timeout, memory / process / file-size limits
and a fresh folder. As root on Linux it also gets new mount, network and PID namespaces and an unprivileged
uid ("namespace" mode): no network, nothing writable outside its folder, and every process it started dies
with it. Elsewhere it falls back to "guard" mode (python-level blocking), which is weaker; results record
which mode ran.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import site
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import EvalError
from .sandbox_child import inside_masked_places, others_can_read

CHILD = Path(__file__).with_name("sandbox_child.py")
MODES = ("auto", "namespace", "guard")
NOBODY = 65534
TAIL = 4096  # bytes of the program's stdout/stderr kept in results
# Where the program may import third-party packages from (numpy, ...): this interpreter's site folders.
SITE_DIRS = [p for p in site.getsitepackages() if os.path.isdir(p)]
# Everything else the interpreter reads (a virtualenv's pyvenv.cfg and bin/ too, for programs that start
# sys.executable): namespace mode keeps these visible even where it masks or hides the folders around them.
LIBRARY_DIRS = [p for p in (sys.prefix, sys.base_prefix, sysconfig.get_paths()["stdlib"],
                            sysconfig.get_paths()["platstdlib"], os.path.dirname(sys.executable),
                            os.path.dirname(os.path.realpath(sys.executable)), *SITE_DIRS) if os.path.isdir(p)]


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 5.0
    memory_bytes: int = 2 << 30  # address space; numpy alone maps a few hundred MB
    processes: int = 32  # RLIMIT_NPROC of the sandbox uid: a fork bomb stops here
    file_bytes: int = 16 << 20  # largest file it may write, stdout included
    folder_bytes: int = 64 << 20  # its tmpfs folder (namespace mode)


@dataclass
class Outcome:
    status: str  # "passed" | "failed" | "timeout" | "error" (the sandbox itself failed)
    elapsed_s: float
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def error(self) -> str:
        """The last line of the traceback, e.g. 'AssertionError' or 'MemoryError' (empty when it passed)."""
        if self.status == "timeout":
            return "timeout"
        lines = [ln for ln in self.stderr.strip().splitlines() if ln.strip()]
        return lines[-1][:300] if lines else ("" if self.passed else f"exit code {self.exit_code}")


class Sandbox:
    def __init__(self, limits: Limits | None = None, mode: str = "auto", uid: int = NOBODY, gid: int = NOBODY):
        if mode not in MODES:
            raise EvalError(f"unknown sandbox mode {mode!r} (choose from {', '.join(MODES)})")
        self.limits = limits or Limits()
        self.uid, self.gid = uid, gid
        self.is_root = os.geteuid() == 0
        self.mode = self._probe() if mode == "auto" else mode
        if self.mode == "namespace":
            try:
                inside_masked_places(LIBRARY_DIRS)
            except OSError as e:
                raise EvalError(f"the namespace sandbox cannot run this interpreter: {e}") from None
        # Namespace mode re-exposes a private library folder; guard mode cannot, so there it keeps the uid.
        self.drop_uid = self.is_root and (self.mode == "namespace" or _library_readable_by_others())

    def _probe(self) -> str:
        """Namespaces when the platform grants them (root on Linux), else guard mode."""
        if not (self.is_root and sys.platform.startswith("linux")):
            return "guard"
        out = self._run("pass", "namespace", self.limits, drop_uid=True)
        return "namespace" if out.status == "passed" else "guard"

    def describe(self) -> dict:
        """What protected the programs, for the results file."""
        ns = self.mode == "namespace"
        return {
            "mode": self.mode,
            "network": "none (new network namespace)" if ns else "python sockets blocked",
            "filesystem": "own tmpfs folder; /tmp, /var/tmp, /dev/shm private" if ns
            else "writes and deletions outside its folder blocked (python level)",
            "user": f"uid {self.uid}" if self.drop_uid else f"uid {os.geteuid()} (no uid drop)",
            "processes": "own PID namespace, killed with the program" if ns else "fork blocked, process group killed",
            "limits": asdict(self.limits),
        }

    def run(self, code: str, timeout_s: float | None = None) -> Outcome:
        limits = self.limits if timeout_s is None else Limits(**{**asdict(self.limits), "timeout_s": timeout_s})
        return self._run(code, self.mode, limits, self.drop_uid)

    def _run(self, code: str, mode: str, limits: Limits, drop_uid: bool) -> Outcome:
        nonce = secrets.token_hex(16)
        outer = Path(tempfile.mkdtemp(prefix="plusls-sandbox-"))
        try:
            work = outer / "work"
            work.mkdir()
            if drop_uid and mode == "guard":
                os.chown(work, self.uid, self.gid)
                outer.chmod(0o711)
            job = {
                "code": code, "nonce": nonce, "mode": mode, "workdir": str(work),
                "uid": self.uid, "gid": self.gid, "drop_uid": drop_uid, "timeout_s": limits.timeout_s,
                "memory_bytes": limits.memory_bytes, "file_bytes": limits.file_bytes,
                "folder_bytes": limits.folder_bytes,
                # Root is exempt from RLIMIT_NPROC, so it binds only the dropped uid; a normal user's count
                # includes all their other processes, so there the guard's blocked fork does the job instead.
                "nproc": limits.processes if drop_uid else None,
                "site_dirs": SITE_DIRS, "library_dirs": LIBRARY_DIRS,
            }
            return self._spawn(job, outer, limits, nonce)
        finally:
            shutil.rmtree(outer, ignore_errors=True)

    def _spawn(self, job: dict, outer: Path, limits: Limits, nonce: str) -> Outcome:
        status_r, status_w = os.pipe()
        start = time.perf_counter()
        with open(outer / "stdout", "wb") as out, open(outer / "stderr", "wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-S", str(CHILD), str(status_w)], stdin=subprocess.PIPE, stdout=out, stderr=err,
                pass_fds=(status_w,), start_new_session=True, env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
            )
            os.close(status_w)
            try:
                proc.communicate(json.dumps(job).encode(), timeout=limits.timeout_s + 30)
            except subprocess.TimeoutExpired:  # the runner itself hung: kill its whole group
                os.killpg(proc.pid, 9)
                proc.wait()
            with os.fdopen(status_r, "rb") as f:
                raw = f.read()
        elapsed = time.perf_counter() - start
        stdout, stderr = _tail(outer / "stdout"), _tail(outer / "stderr")
        try:
            report = json.loads(raw.decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            return Outcome("error", elapsed, proc.returncode, stdout, f"sandbox runner failed:\n{stderr}")
        if "setup_error" in report:
            return Outcome("error", elapsed, None, stdout, f"sandbox setup failed: {report['setup_error']}")
        if not report["started"] and not report["timeout"]:
            return Outcome("error", elapsed, report["exit_code"], stdout, f"sandbox setup failed:\n{stderr}")
        if report["timeout"]:
            return Outcome("timeout", report["elapsed_s"], None, stdout, stderr)
        ok = report["exit_code"] == 0 and stdout.rstrip().rsplit("\n", 1)[-1] == nonce
        stdout = stdout.rstrip().removesuffix(nonce).rstrip("\n") if ok else stdout
        return Outcome("passed" if ok else "failed", report["elapsed_s"], report["exit_code"], stdout, stderr)


def _library_readable_by_others() -> bool:
    """Whether a dropped uid could import from this interpreter's library and site folders."""

    stdlib = sysconfig.get_paths()["stdlib"]
    folders = [stdlib, os.path.join(stdlib, "lib-dynload"), *SITE_DIRS]
    return all(others_can_read(os.path.realpath(p)) for p in folders if os.path.isdir(p))


def _tail(path: Path) -> str:
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size - TAIL))
        return f.read().decode("utf-8", "replace")
