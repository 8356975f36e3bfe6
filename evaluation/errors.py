"""Errors `plusls eval` reports to the user without a traceback."""
from plusls.common.errors import PluslsError


class EvalError(PluslsError):
    """Bad evaluation input: a missing data path, an unknown task, a model of the wrong kind."""
