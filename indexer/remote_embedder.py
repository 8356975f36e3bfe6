"""Embeddings from an OpenAI-compatible `/v1/embeddings` endpoint (llama-server --embeddings, vLLM,
text-embeddings-inference), so a monorepo's shared index is embedded on the team's GPU server."""
from __future__ import annotations

import httpx
import numpy as np

from plusls.common.http import base_url, bearer

from .errors import WorkspaceIndexError

BATCH = 64


class RemoteEmbedder:
    def __init__(self, url: str, model: str | None = None, api_key_env: str | None = None, verify_tls: bool = True,
                 timeout_s: float = 60.0):
        self.url, self.model, self.api_key_env = base_url(url), model, api_key_env
        self.client = httpx.Client(base_url=self.url, timeout=timeout_s, verify=verify_tls, trust_env=False)
        self.dim = int(self.embed(["def probe(): pass"]).shape[1])
        self.model_id = f"remote:{self.url}/{model or 'default'}@{self.dim}"

    def embed(self, texts, batch_size: int = BATCH, max_length: int | None = None) -> np.ndarray:
        """Unit vectors, one row per text (cosine similarity is their inner product, as with the local model)."""
        out = []
        for start in range(0, len(texts), batch_size):
            body = {"input": list(texts[start : start + batch_size])}
            if self.model:
                body["model"] = self.model
            try:
                response = self.client.post("/v1/embeddings", json=body,
                                            headers=bearer(self.api_key_env, "--embed-key-env"))
            except httpx.HTTPError as e:
                raise WorkspaceIndexError(f"cannot reach the embedding server {self.url}: {e}") from e
            if response.status_code != 200:
                raise WorkspaceIndexError(f"the embedding server {self.url} answered HTTP {response.status_code}: "
                                          f"{response.text[:200]}")
            rows = sorted(response.json()["data"], key=lambda d: d["index"])
            out.append(np.asarray([r["embedding"] for r in rows], np.float32))
        vectors = np.concatenate(out) if out else np.zeros((0, 0), np.float32)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
