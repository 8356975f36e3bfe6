"""`$/progress` for one long job, when the client supports server-initiated progress (else nothing is sent).
Reports may come from any thread."""
from __future__ import annotations

import asyncio

from lsprotocol import types as t
from pygls.lsp.server import LanguageServer


class WorkProgress:
    def __init__(self, ls: LanguageServer, token: str, enabled: bool):
        self.ls, self.token, self.enabled = ls, token, enabled
        self._loop = asyncio.get_running_loop()

    @classmethod
    async def begin(cls, ls: LanguageServer, token: str, title: str) -> "WorkProgress":
        try:
            await ls.work_done_progress.create_async(token)
            enabled = True
        except Exception:  # the client does not support server-initiated progress
            enabled = False
        if enabled:
            ls.work_done_progress.begin(token, t.WorkDoneProgressBegin(title, percentage=0, cancellable=False))
        return cls(ls, token, enabled)

    def report(self, message: str, percentage: int) -> None:
        if self.enabled:
            self._loop.call_soon_threadsafe(self.ls.work_done_progress.report, self.token,
                                            t.WorkDoneProgressReport(message=message, percentage=percentage))

    def end(self, message: str) -> None:
        if self.enabled:
            self.ls.work_done_progress.end(self.token, t.WorkDoneProgressEnd(message=message))
