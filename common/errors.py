"""The base of every error the user sees: each message says what is wrong and what to do next."""


class PluslsError(Exception):
    """Reported to the user without a traceback (the CLI prints it; the server shows it)."""
