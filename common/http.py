"""What every client of a team's servers (inference, embeddings) shares: the server's root URL and the bearer key,
read from an environment variable the settings name, never from the settings themselves."""
from __future__ import annotations

import os

from .errors import PluslsError


def base_url(url: str) -> str:
    """The server's root: "http://host:8000/v1/" and "http://host:8000" both name http://host:8000."""
    url = url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


def bearer(env_name: str | None, setting: str) -> dict[str, str]:
    """The Authorization header from $env_name (none when no variable is named); `setting` names where it is set."""
    if not env_name:
        return {}
    key = os.environ.get(env_name)
    if not key:
        raise PluslsError(f"the API key's environment variable {env_name} is not set: set it where plusls starts, "
                          f"or clear {setting}")
    return {"Authorization": f"Bearer {key}"}
