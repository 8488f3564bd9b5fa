"""Any OpenAI-compatible chat endpoint (vLLM, llama.cpp server, Ollama, hosted APIs) over HTTP.

POSTs to `{base_url}/chat/completions` with `requests`, temperature 0 (or the request's sampling
settings: an answer per call, each with its own seed), per-token log-probabilities asked for, a few requests in flight
at once, and retries with exponential backoff on 429 / 5xx / connection errors. A request that
still fails comes back as a `Generation` with `error` set; the batch goes on.
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor

from t2s_bench.backends.base import (
    Backend,
    Generation,
    GenerationRequest,
    expand_samples,
    merge_samples,
    register_backend,
)

log = logging.getLogger(__name__)

RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}


@register_backend("openai")
class OpenAICompatBackend(Backend):
    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 4,
        max_retries: int = 4,
        backoff_s: float = 1.0,
        timeout_s: float = 120.0,
        context_window: int = 32768,
        seed: int | None = 0,
        extra_body: dict | None = None,
        logprobs: bool = True,
    ):
        import requests

        self.model_id = model
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1").rstrip("/")
        self.api_key_env = api_key_env
        self.concurrency = max(1, concurrency)
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self.context_window = context_window
        self.seed = seed
        self.extra_body = extra_body or {}
        self.logprobs = logprobs  # ask for per-token log-probabilities (servers that reject it: False)
        self._session = requests.Session()
        key = os.environ.get(api_key_env)
        if key:
            self._session.headers["Authorization"] = f"Bearer {key}"

    def count_tokens(self, messages: list[dict[str, str]]) -> int:
        """The server's count when it offers `/tokenize` (vLLM, llama.cpp server); else ~4 characters a token."""
        text = "".join(m["role"] + "\n" + m["content"] + "\n" for m in messages)
        try:
            root = self.base_url.removesuffix("/v1")
            resp = self._session.post(f"{root}/tokenize", json={"model": self.model_id, "messages": messages}, timeout=10)
            if resp.ok:
                data = resp.json()
                if isinstance(data.get("count"), int):
                    return data["count"]
                if isinstance(data.get("tokens"), list):
                    return len(data["tokens"])
        except Exception:  # noqa: BLE001 - estimate below
            pass
        return max(1, len(text) // 4)

    def generate(self, requests: list[GenerationRequest]) -> list[Generation]:
        flat, owners = expand_samples(requests, self.seed or 0)
        if self.concurrency == 1 or len(flat) <= 1:
            return merge_samples(requests, [self._one(r) for r in flat], owners)
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return merge_samples(requests, list(pool.map(self._one, flat)), owners)

    def _one(self, request: GenerationRequest) -> Generation:
        import requests as rq

        body = {"model": self.model_id, "messages": request.messages, "max_tokens": request.max_tokens,
                "temperature": request.temperature, **self.extra_body}
        if request.sampled:
            body["top_p"] = request.top_p
        if self.logprobs:
            body["logprobs"] = True
        if request.stop:
            body["stop"] = request.stop
        seed = request.seed if request.sampled else self.seed
        if seed is not None:
            body["seed"] = seed
        start = time.perf_counter()
        error = "no attempt made"
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                resp = self._session.post(f"{self.base_url}/chat/completions", json=body, timeout=self.timeout_s)
            except (rq.ConnectionError, rq.Timeout) as e:
                error = f"{type(e).__name__}: {e}"
                continue
            if resp.status_code in RETRY_STATUS:
                error = f"HTTP {resp.status_code}: {resp.text[:300]}"
                log.info("retrying after %s (attempt %d)", error, attempt + 1)
                continue
            if not resp.ok:
                error = f"HTTP {resp.status_code}: {resp.text[:300]}"
                break
            try:
                data = resp.json()
                choice = data["choices"][0]
                usage = data.get("usage") or {}
                return Generation(
                    text=choice["message"].get("content") or "",
                    prompt_tokens=int(usage.get("prompt_tokens", 0)),
                    completion_tokens=int(usage.get("completion_tokens", 0)),
                    latency_s=time.perf_counter() - start,
                    finish_reason=choice.get("finish_reason"),
                    token_logprobs=_token_logprobs(choice),
                )
            except (ValueError, KeyError, IndexError, TypeError) as e:
                error = f"malformed response: {type(e).__name__}: {e}; body {resp.text[:300]}"
                break
        return Generation("", 0, 0, time.perf_counter() - start, None, error)

    def config(self) -> dict:
        return {
            "backend": self.name,
            "model": self.model_id,
            "base_url": self.base_url,
            "params": {"temperature": 0.0, "seed": self.seed, **self.extra_body},
        }

    def close(self) -> None:
        self._session.close()


def _token_logprobs(choice: dict) -> list[float] | None:
    """`choices[0].logprobs.content[*].logprob` of the chat completions API, when the server sent them."""
    content = (choice.get("logprobs") or {}).get("content")
    if not isinstance(content, list):
        return None
    return [float(t["logprob"]) for t in content if isinstance(t, dict) and "logprob" in t]
