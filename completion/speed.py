"""How fast a completer reads a prompt and writes tokens on this machine.

Measured the way the completer runs (prefill in PREFILL_CHUNK passes, then greedy steps on the cache, no drafts)
on real code, once per machine, model and onnxruntime version, and kept in the cache folder: a few seconds the
first time a model is needed, nothing after. `plusls doctor --bench` measures again."""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from plusls.common.paths import cache_home
from plusls.exported.causal_lm import CausalLM
from plusls.exported.generation import GenerationConfig
from plusls.exported.manifest import Manifest
from plusls.exported.sessions import runtime_version

from .prefix_reuse import PREFILL_CHUNK, PrefixReuseLM

PREFILL_TOKENS = 4 * PREFILL_CHUNK
DECODE_TOKENS = 16
# CPU features that change which kernels onnxruntime runs (int8 dot products above all).
FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm")


@dataclass(frozen=True)
class Speed:
    prefill_tokens_per_s: float
    decode_tokens_per_s: float
    measured: str  # when, UTC

    def to_dict(self) -> dict:
        return asdict(self)


def machine(providers: list[str]) -> str:
    """What the speed depends on besides the model: the CPU, its int8 features, the threads, the provider."""
    name, flags = "unknown CPU", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and name == "unknown CPU":
                name = value.strip()
            elif key.strip() in ("flags", "Features") and not flags:
                flags = set(value.split())
    except OSError:
        import platform

        name = platform.processor() or platform.machine()
    threads = os.environ.get("PLUSLS_THREADS") or str(os.cpu_count())
    return f"{name} [{' '.join(f for f in FEATURES if f in flags)}] {threads} threads {providers[0]}"


def speed_key(manifest: Manifest, providers: list[str]) -> str:
    model = hashlib.sha256(json.dumps(manifest.files, sort_keys=True).encode()).hexdigest()[:16]
    return f"{machine(providers)} | model {model} | onnxruntime {runtime_version()}"


def measure(lm: CausalLM) -> Speed:
    text = (Path(__file__).parent / "prompt.py").read_text()  # real code, always at hand
    ids = lm.encode(text * (1 + 4 * PREFILL_TOKENS // max(len(text), 1)))[: PREFILL_TOKENS + PREFILL_CHUNK]
    model = PrefixReuseLM(lm, speculative=False)
    model.warm("kernels", ids[-PREFILL_CHUNK:])  # the first pass sets up onnxruntime's kernels
    start = time.perf_counter()
    model.warm("prompt", ids[:PREFILL_TOKENS])
    prefill = PREFILL_TOKENS / (time.perf_counter() - start)
    generation, _ = model.generate("prompt", ids[:PREFILL_TOKENS], GenerationConfig(
        max_new_tokens=DECODE_TOKENS, stop_on_eos=False))
    steps = len(generation.token_ids) - 1
    decode = steps / max(generation.total_s - generation.first_token_s, 1e-6)
    return Speed(round(prefill, 1), round(decode, 1), time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))


class SpeedCache:
    """Measured speeds by speed_key, in one JSON file (written whole, then renamed: never half a file)."""

    def __init__(self, path: Path | None = None):
        self.path = path or cache_home() / "completer-speed.json"

    def _read(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}

    def get(self, key: str) -> Speed | None:
        found = self._read().get(key)
        try:
            return Speed(**found) if isinstance(found, dict) else None
        except TypeError:  # written by another plusls version
            return None

    def put(self, key: str, speed: Speed) -> None:
        data = self._read()
        data[key] = speed.to_dict()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        tmp.replace(self.path)

    def speed_of(self, lm: CausalLM, again: bool = False) -> Speed:
        """The model's speed here: cached, else (or `again`) measured now and kept."""
        key = speed_key(lm.manifest, lm.providers)
        if not again and (known := self.get(key)) is not None:
            return known
        speed = measure(lm)
        self.put(key, speed)
        return speed
