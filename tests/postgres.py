"""A real PostgreSQL 16 with pgvector, run by the `pgserver` wheel as an ordinary process (about a second to start):
the shared index's tests talk to the database teams run."""
from __future__ import annotations

from pathlib import Path

import pytest


class Postgres:
    def __init__(self, data: Path):
        self.data = data
        self.server = None

    def start(self) -> str:
        pgserver = pytest.importorskip("pgserver", reason="pgserver is in the dev extra: pip install -e '.[dev]'")
        self.server = pgserver.get_server(self.data, cleanup_mode="stop")
        return self.server.get_uri()

    def stop(self) -> None:
        if self.server is not None:
            self.server.cleanup()
            self.server = None

    def database(self, name: str) -> str:
        """A fresh, empty database on this server: its URL."""
        self.server.psql(f"DROP DATABASE IF EXISTS {name};")
        self.server.psql(f"CREATE DATABASE {name};")
        return self.server.get_uri(name)
