"""One OpenAI-compatible chat-completions call with a timeout and retries, shared by the
OpenAI policy and the OpenAI teacher.

The API key comes from an environment variable (vLLM and ``pixelpilot serve`` accept any key).
Connection errors, timeouts, 429 and 5xx are retried with exponential backoff; a 4xx is not
(retrying cannot help). What finally fails raises ``ChatCallError`` with a message that says
what to check.
"""

from __future__ import annotations

import os
import time
from typing import Any


class ChatCallError(RuntimeError):
    """The endpoint rejected the request, or gave no answer after every retry."""


class ChatClient:
    """``ChatClient(base_url, api_key_env, timeout_s).create(retries=, backoff_s=, **request)``."""

    def __init__(self, base_url: str, api_key_env: str, timeout_s: float) -> None:
        import openai  # optional dependency: pixelpilot[agent]

        self.base_url = base_url
        self._openai = openai
        key = os.environ.get(api_key_env) or "EMPTY"
        self._client = openai.OpenAI(base_url=base_url, api_key=key, timeout=timeout_s, max_retries=0)

    def create(self, *, retries: int, backoff_s: float, **request: Any) -> Any:
        """``chat.completions.create(**request)`` with retries; ``ChatCallError`` when it cannot succeed."""
        o = self._openai
        retryable = (o.APIConnectionError, o.APITimeoutError, o.RateLimitError, o.InternalServerError)
        last: Exception | None = None
        for attempt in range(retries + 1):
            try:
                return self._client.chat.completions.create(**request)
            except retryable as exc:
                last = exc
                if attempt < retries:
                    time.sleep(backoff_s * (2 ** attempt))
            except o.APIStatusError as exc:  # 4xx: retrying will not help
                raise ChatCallError(f"{self.base_url} rejected the request ({exc.status_code}): {exc.message}") from exc
        raise ChatCallError(
            f"no reply from {self.base_url} after {retries + 1} attempts ({type(last).__name__}: {last}); "
            "check the server is running and that the model name is one it serves"
        )
