"""Indexer errors the user sees."""
from plusls.common.errors import PluslsError


class WorkspaceIndexError(PluslsError):
    """The workspace path or the index on disk cannot be used; the message says how to fix it."""
