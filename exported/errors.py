"""Errors of the model runtime and export the user sees."""
from plusls.common.errors import PluslsError


class ModelDirError(PluslsError):
    """A model directory is missing, incomplete or corrupt."""


class ExportError(PluslsError):
    """A checkpoint could not be exported, or its export failed the parity check."""
