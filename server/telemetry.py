"""Accepted and rejected completions, with their context, appended to a local JSONL file for refresh training.
Nothing leaves the machine."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from plusls.common.lru import LRU
from plusls.common.paths import telemetry_log_path


class CompletionLog:
    def __init__(self, path: Path | None = None, remember: int = 512):
        self.path = path or telemetry_log_path()
        self._shown: LRU[str, dict] = LRU(remember)  # suggestion id -> its context, until answered
        self._lock = threading.Lock()

    def shown(self, sid: str, text: str, prefix: str, suffix: str, language: str, path: str) -> None:
        with self._lock:
            self._shown.put(sid, {"text": text, "prefix": prefix[-2000:], "suffix": suffix[:500],
                                  "language": language, "path": path})

    def record(self, sid: str, accepted: bool) -> bool:
        """Append one accept/reject record; False if the id names no suggestion this server showed."""
        with self._lock:
            context = self._shown.pop(sid)
            if context is None:
                return False
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps({"time": time.time(), "id": sid, "accepted": accepted, **context}) + "\n")
            return True
