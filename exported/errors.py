"""Errors the user sees: each message says what is wrong and what to do next."""


class PluslsError(Exception):
    """Base class for errors reported to the user without a traceback."""


class ModelDirError(PluslsError):
    """A model directory is missing, incomplete or corrupt."""


class ExportError(PluslsError):
    """A checkpoint could not be exported, or its export failed the parity check."""
