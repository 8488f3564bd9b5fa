"""One loaded system shared by every request: a worker thread batches concurrent questions.

Requests queue up; the worker takes every waiting request (up to `max_batch`) and answers them with
one `system.predict` call, so a batched backend (llama.cpp parallel sequences, transformers
batches) decodes concurrent questions together. The model is used by this one thread only.

Confidence. The system's backend is wrapped so that each generation is recorded with its request
messages; a prediction's generation is the one whose messages equal `prediction.prompt` (the final
answer's prompt, after drafts, votes or repairs). Its confidence is the geometric mean of the
probabilities of the generated tokens, `exp(mean(token log-probabilities))`, in (0, 1]: every token
of the model's output counts (code fences included, the end-of-generation token excluded), and
generation is greedy, so each token is the model's most probable one. It is None when the backend
reports no log-probabilities (openai, plugins) or the system has no backend (oracle).
"""

from __future__ import annotations

import json
import logging
import math
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass

from t2s_bench.backends.base import Generation, GenerationRequest
from t2s_bench.records import Prediction, Task

log = logging.getLogger(__name__)


def confidence(token_logprobs: list[float] | None) -> float | None:
    """exp(mean log-probability) of the generated tokens; None without log-probabilities."""
    if not token_logprobs:
        return None
    return math.exp(sum(token_logprobs) / len(token_logprobs))


def _key(messages: list[dict]) -> str:
    return json.dumps(messages, sort_keys=True)


class RecordingBackend:
    """A backend wrapper that remembers the generation of each request (by its messages)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.generations: dict[str, Generation] = {}

    def generate(self, requests: list[GenerationRequest]) -> list[Generation]:
        gens = self.inner.generate(requests)
        for request, gen in zip(requests, gens):
            self.generations[_key(request.messages)] = gen
        return gens

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


@dataclass
class Answer:
    prediction: Prediction
    confidence: float | None


class Generator:
    """Answers tasks with one system, batching the requests that wait at the same time."""

    def __init__(self, system, *, max_batch: int = 8) -> None:
        self.system = system
        self.max_batch = max(1, max_batch)
        self._recorder: RecordingBackend | None = None
        backend = getattr(system, "backend", None)
        if backend is not None and hasattr(backend, "generate"):
            self._recorder = backend if isinstance(backend, RecordingBackend) else RecordingBackend(backend)
            system.backend = self._recorder
        self._queue: queue.Queue = queue.Queue()
        self.batches = 0  # predict calls made
        self._thread = threading.Thread(target=self._loop, name="t2s-generator", daemon=True)
        self._thread.start()

    def submit(self, task: Task) -> Future:
        future: Future = Future()
        self._queue.put((task, future))
        return future

    def answer(self, task: Task, timeout: float | None = None) -> Answer:
        return self.submit(task).result(timeout)

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            while len(batch) < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)  # stop after this batch
                    break
                batch.append(nxt)
            self._run(batch)

    def _run(self, batch: list[tuple[Task, Future]]) -> None:
        batch = [(t, f) for t, f in batch if f.set_running_or_notify_cancel()]
        if not batch:
            return
        if self._recorder is not None:
            self._recorder.generations.clear()
        self.batches += 1
        try:
            predictions = self.system.predict([t for t, _ in batch])
        except Exception as e:  # the requests fail, the worker goes on
            log.exception("system failed on a batch of %d", len(batch))
            for _, future in batch:
                future.set_exception(e)
            return
        for (_, future), pred in zip(batch, predictions):
            gen = self._recorder.generations.get(_key(pred.prompt)) if self._recorder else None
            future.set_result(Answer(pred, confidence(gen.token_logprobs) if gen else None))

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=60)
        backend = self._recorder.inner if self._recorder else getattr(self.system, "backend", None)
        if backend is not None and hasattr(backend, "close"):
            backend.close()
