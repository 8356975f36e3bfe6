"""Runs ONE untrusted Python program in isolation. sandbox.py starts it as `python -I -S sandbox_child.py STATUS_FD`.

Standalone on purpose (stdlib only, never imports plusls): it runs before any isolation exists, as the caller.
The job arrives as JSON on stdin; a one-line JSON status goes to STATUS_FD when it ends. The program's own
stdout/stderr are this process's stdout/stderr (files the parent opened), capped by RLIMIT_FSIZE.

Process tree in "namespace" mode (root, Linux):
  runner (this script, root)  -- new mount + network + PID namespaces, tmpfs folder, waits with the timeout
    init (PID 1 of the new PID namespace, root): when it exits the kernel kills every process left in it,
      so a fork bomb or a background child dies with the program; it dies if the runner dies (PDEATHSIG)
      program (unprivileged uid, rlimits, cwd = its own tmpfs) -- runs the code with exec()
"guard" mode (no namespaces: not root, or the platform refuses them): the program runs as a child with
rlimits, a python-level guard (no sockets, no fork/exec/kill, no file removal) and, as root, the dropped uid.
"""
from __future__ import annotations

import ctypes
import json
import os
import resource
import select
import signal
import stat
import sys
import time
import traceback

CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWNET = 0x00020000, 0x20000000, 0x40000000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 2, 4, 8, 32, 4096, 16384, 1 << 18
MS_RDONLY = 1
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38
SETUP_FAILED = 125  # the program's exit code when its own setup (before any untrusted code) failed
# World-writable places an unprivileged uid could still write to: each gets the sandbox's own folder instead.
SHARED_WRITABLE = ("/var/tmp", "/dev/shm", "/run/lock", "/tmp")

libc = ctypes.CDLL(None, use_errno=True)


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = lambda s: None if s is None else s.encode()  # noqa: E731
    _check(libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)), f"mount {target}")


def _first_unsearchable(path: str) -> str | None:
    """The first folder on the way to `path` (path itself excluded) that other users cannot enter, or None."""
    cur = "/"
    for part in [p for p in path.split("/") if p]:
        if not os.stat(cur).st_mode & stat.S_IXOTH:
            return cur
        cur = os.path.join(cur, part)
    return None


def others_can_read(path: str) -> bool:
    """Whether an unrelated uid can reach and list `path` (every ancestor searchable, the folder readable)."""
    if _first_unsearchable(path) is not None:
        return False
    mode = os.stat(path).st_mode
    return bool(mode & stat.S_IXOTH and mode & stat.S_IROTH)


def first_private_ancestor(path: str) -> str:
    found = _first_unsearchable(path)
    if found is None:
        raise OSError(f"{path} itself is not readable by other users; the sandbox cannot expose it")
    return found


def interpreter_folders(job: dict) -> list[str]:
    """What the program's interpreter reads: its import path and the folders the parent named (prefix, bin, ...)."""
    return sorted({os.path.abspath(p) for p in [*sys.path, *job["library_dirs"]] if p and os.path.isdir(p)})


def masked_places() -> list[str]:
    return [t for t in SHARED_WRITABLE if os.path.isdir(t) and not os.path.islink(t)]


def inside_masked_places(folders: list[str]) -> list[str]:
    """The folders (as named and as resolved) that lie inside a place the sandbox masks, parents first.

    A folder that is such a place itself cannot be both private and the library, so that is refused.
    """
    found = set()
    for path in {q for f in folders for q in (os.path.abspath(f), os.path.realpath(f))}:
        for place in masked_places():
            if path == place:
                raise OSError(f"the interpreter's folder {path} is a shared place the sandbox replaces with a "
                              "private folder: install Python or the virtualenv elsewhere, or use the guard sandbox")
            if path.startswith(place + "/"):
                found.add(path)
    return sorted(found)


def expose_interpreter(folders: list[str], keep: list[str]) -> list[str]:
    """Make the interpreter's library folders readable by the sandbox uid without exposing their neighbours.

    A library under a private folder (e.g. pyenv in /root, mode 700) is bind-mounted back into an empty tmpfs
    laid over that private folder, so the program can import the standard library but sees nothing else there.
    `keep` are folders (the sandbox folder) that must stay reachable by the runner itself.
    """
    needed = sorted({os.path.realpath(p) for p in folders})
    hidden = [p for p in needed if not others_can_read(p)]
    if not hidden:
        return []
    roots = sorted({first_private_ancestor(p) for p in hidden})
    rebind = sorted({*hidden, *(k for k in keep if any(k.startswith(r + "/") for r in roots))})
    fds = {p: os.open(p, os.O_PATH | os.O_DIRECTORY) for p in rebind}
    for root in roots:
        mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m")
    done: list[str] = []
    for p in rebind:
        if any(p.startswith(d + "/") for d in done):
            continue  # already inside a folder bound back
        os.makedirs(p, exist_ok=True)
        mount(f"/proc/self/fd/{fds[p]}", p, None, MS_BIND | MS_REC)
        done.append(p)
    for fd in fds.values():
        os.close(fd)
    return roots


def isolate_filesystem(workdir: str, uid: int, gid: int, folder_bytes: int, library: list[str]) -> str:
    """Private mounts: a size-capped tmpfs as the program's folder, also laid over the shared writable places.

    `library` are the interpreter's folders. Those inside a masked place (a virtualenv under /tmp, as in a CI
    checkout) are bound back read-only at the same paths, or the program could not import its packages.
    """
    mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing below propagates to the host
    expose_interpreter(library, [workdir])
    # Handles taken before masking: afterwards these paths lead into the program's empty folder.
    rebind = {p: os.open(p, os.O_PATH | os.O_DIRECTORY) for p in inside_masked_places(library)}
    mount("tmpfs", workdir, "tmpfs", MS_NOSUID | MS_NODEV,
          f"size={max(folder_bytes, 1 << 20)},mode=0700,uid={uid},gid={gid}")
    fd = os.open(workdir, os.O_PATH | os.O_DIRECTORY)
    cwd = workdir
    for target in masked_places():  # /tmp last: it may hold workdir itself; the source is the fd, not a path
        mount(f"/proc/self/fd/{fd}", target, None, MS_BIND)
        cwd = target if target == "/tmp" else cwd
    os.close(fd)
    for path, src in rebind.items():  # parents first, so a nested path already exists in its parent's copy
        os.makedirs(path, exist_ok=True)  # in the program's folder, which thus shows the empty parents
        mount(f"/proc/self/fd/{src}", path, None, MS_BIND | MS_REC)
        mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
        os.close(src)
    return cwd


def limit_resources(job: dict) -> None:
    def cap(which: int, value: int) -> None:
        resource.setrlimit(which, (value, value))

    cap(resource.RLIMIT_AS, job["memory_bytes"])
    cap(resource.RLIMIT_FSIZE, job["file_bytes"])
    cap(resource.RLIMIT_CORE, 0)
    cap(resource.RLIMIT_NOFILE, 256)
    cap(resource.RLIMIT_CPU, int(job["timeout_s"]) + 2)  # a backstop for every process; the wall clock rules
    if job["nproc"] is not None:
        cap(resource.RLIMIT_NPROC, job["nproc"])


def drop_privileges(uid: int, gid: int) -> None:
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    if os.getuid() == 0 or os.geteuid() == 0:
        raise OSError("could not drop root")


def install_guard() -> None:
    """Python-level blocking for "guard" mode, where the OS cannot isolate: no sockets, no processes, no
    deletion, no writing outside the folder. Code that means harm can get around it (ctypes); mistakes cannot."""
    import builtins
    import io
    import shutil
    import socket
    import subprocess

    def refuse(*_args, **_kwargs):
        raise PermissionError("not allowed in the plusls sandbox")

    home = os.path.realpath(os.getcwd()) + os.sep

    def inside(path) -> bool:
        return isinstance(path, int) or (os.path.realpath(os.fsdecode(path)) + os.sep).startswith(home)

    real_open, real_os_open = io.open, os.open

    def open_guarded(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+") and not inside(file):
            refuse()
        return real_open(file, mode, *args, **kwargs)

    def os_open_guarded(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC) and not inside(path):
            refuse()
        return real_os_open(path, flags, *args, **kwargs)

    def only_inside(real):
        def guarded(*paths, **kwargs):
            if not all(inside(p) for p in paths):
                refuse()
            return real(*paths, **kwargs)
        return guarded

    builtins.open = io.open = open_guarded  # type: ignore[assignment]
    os.open = os_open_guarded  # type: ignore[assignment]
    for name in ("mkdir", "remove", "unlink", "rmdir", "rename", "replace"):  # fine inside its own folder
        setattr(os, name, only_inside(getattr(os, name)))

    class NoSocket(socket.socket):
        def __init__(self, *args, **kwargs):
            refuse()

    socket.socket = NoSocket  # type: ignore[misc]
    for name in ("create_connection", "create_server", "socketpair", "fromfd", "getaddrinfo"):
        setattr(socket, name, refuse)
    for name in ("fork", "forkpty", "system", "kill", "killpg", "removedirs", "renames", "truncate", "chmod",
                 "chown", "lchown", "setuid", "execv", "execve", "execl", "execlp", "execvp", "execvpe", "spawnv",
                 "spawnve", "posix_spawn", "posix_spawnp"):
        if hasattr(os, name):
            setattr(os, name, refuse)
    subprocess.Popen = refuse  # type: ignore[misc]
    shutil.rmtree = refuse  # type: ignore[assignment]
    shutil.move = refuse  # type: ignore[assignment]
    builtins.exit = builtins.quit = refuse  # type: ignore[assignment]


def run_program(job: dict, ready_fd: int) -> None:
    """In the program's process: limits, drop root, then exec the code. Never returns."""
    code = SETUP_FAILED
    try:
        prepare(job)
        os.write(ready_fd, b"R")
        os.close(ready_fd)
        code = 1  # from here on, any failure is the program's (a SyntaxError too)
        exec(compile(job["code"], "program.py", "exec"), {"__name__": "__main__", "__builtins__": __builtins__})
        sys.stdout.flush()
        os.write(1, f"\n{job['nonce']}\n".encode())  # proof that exec() returned normally
        code = 0
    except BaseException:  # SystemExit too: a program that exits early did not finish its tests
        try:
            traceback.print_exc()
            sys.stderr.flush()
        except BaseException:
            pass
    finally:
        os._exit(code)


def prepare(job: dict) -> None:
    limit_resources(job)
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    if job["mode"] == "guard":  # the guard's modules, loaded while the library is still readable
        import shutil  # noqa: F401
        import socket  # noqa: F401
        import subprocess  # noqa: F401
    cwd = os.getcwd()
    os.environ.clear()
    os.environ.update({"PATH": "/usr/bin:/bin", "HOME": cwd, "TMPDIR": cwd, "LANG": "C.UTF-8",
                       "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    sys.path[:] = [p for p in sys.path if p]  # never import from the folder the program writes to
    if job["drop_uid"]:
        drop_privileges(job["uid"], job["gid"])
    if job["mode"] == "guard":
        install_guard()


def wait_with_timeout(pid: int, timeout_s: float) -> tuple[int | None, bool]:
    """The wait status of `pid`, or (None, True) after killing it at the deadline."""
    deadline = time.monotonic() + timeout_s
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        fd = None
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        left = deadline - time.monotonic()
        if left <= 0:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            status = None
            break
        if fd is not None:
            select.select([fd], [], [], left)
        else:
            time.sleep(min(left, 0.005))
    if fd is not None:
        os.close(fd)
    return status, status is None


def exit_code_of(status: int) -> int:
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


def init_process(job: dict, ready_w: int) -> None:
    """PID 1 of the new PID namespace: start the program, wait for it, exit with its code."""
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    try:
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)  # the program sees only its own PIDs
    except OSError:
        pass
    pid = os.fork()
    if pid == 0:
        run_program(job, ready_w)
    os.close(ready_w)
    while True:  # as init, also reap orphans re-parented to us; leave when the program itself is done
        try:
            done, status = os.waitpid(-1, 0)
        except ChildProcessError:
            os._exit(SETUP_FAILED)
        if done == pid:
            os._exit(exit_code_of(status) & 0xFF)


def main() -> None:
    status_fd = int(sys.argv[1])
    job = json.loads(sys.stdin.read())
    sys.path.extend(p for p in job["site_dirs"] if p not in sys.path)  # started with -S: no site scan, faster
    report: dict = {"mode": job["mode"]}
    ready_r, ready_w = os.pipe()
    try:
        if job["mode"] == "namespace":
            _check(libc.unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID), "unshare")
            os.chdir(isolate_filesystem(job["workdir"], job["uid"], job["gid"], job["folder_bytes"],
                                        interpreter_folders(job)))
        else:
            os.chdir(job["workdir"])
    except OSError as e:
        report["setup_error"] = str(e)
        os.write(status_fd, (json.dumps(report) + "\n").encode())
        sys.exit(0)
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        os.close(ready_r)
        if job["mode"] == "namespace":
            init_process(job, ready_w)
        os.setpgid(0, 0)  # guard mode: one group to kill
        run_program(job, ready_w)
    os.close(ready_w)
    status, timed_out = wait_with_timeout(pid, job["timeout_s"])
    if timed_out and job["mode"] == "guard":
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
    report.update(elapsed_s=round(time.monotonic() - start, 4), timeout=timed_out,
                  exit_code=None if status is None else exit_code_of(status),
                  started=os.read(ready_r, 1) == b"R")
    os.write(status_fd, (json.dumps(report) + "\n").encode())


if __name__ == "__main__":
    main()
