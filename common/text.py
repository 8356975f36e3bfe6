"""Text helpers shared by the server's docstring fallback and the evaluation's identifier baseline."""
from __future__ import annotations

import re


def as_sentence(summary: str) -> str:
    """Whitespace collapsed, first letter upper case, a final full stop."""
    summary = " ".join(summary.split()).strip()
    if not summary:
        return summary
    summary = summary[0].upper() + summary[1:]
    return summary if summary[-1] in ".!?" else summary + "."


def identifier_words(name: str) -> str:
    """get_user_name / getUserName -> "Get user name." (what a docstring says when the model says nothing, and the
    identifier baseline every summary model is measured against)."""
    spaced = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", name)  # HTTPHeader -> HTTP Header
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", spaced).replace("_", " ").split()
    return as_sentence(" ".join(w.lower() for w in words))
