"""The backend contract: chat requests in, generations out; plus the backend registry."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

from t2s_bench.registry import Registry


@dataclass
class GenerationRequest:
    messages: list[dict[str, str]]  # [{"role": "system"|"user"|"assistant", "content": ...}]
    max_tokens: int = 256
    stop: list[str] | None = None


@dataclass
class Generation:
    text: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    finish_reason: str | None = None  # "stop" | "length" | None when unknown
    error: str | None = None  # set (with text "") when this request failed; the batch goes on
    # natural-log probability of each generated token (the end-of-generation token excluded); None when
    # the backend does not report them
    token_logprobs: list[float] | None = None


class Backend(ABC):
    """A model provider. Generation is greedy (temperature 0) so runs are reproducible."""

    name: ClassVar[str] = ""
    context_window: int

    @abstractmethod
    def generate(self, requests: list[GenerationRequest]) -> list[Generation]:
        """One `Generation` per request, in request order."""

    @abstractmethod
    def count_tokens(self, messages: list[dict[str, str]]) -> int:
        """Tokens of the chat-formatted prompt (with the generation prompt) for `messages`."""

    @abstractmethod
    def config(self) -> dict:
        """What identifies this backend's outputs (backend, model id, file sha256/size, parameters)."""

    def close(self) -> None:
        """Release the model; the backend is unusable afterwards."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


BACKENDS: Registry[type[Backend]] = Registry("backend", entry_point_group="t2s_bench.backends")
# built-in backends, imported on first lookup (their heavy dependencies load lazily inside)
BACKENDS.register("llama-cpp", "t2s_bench.backends.llama_cpp:LlamaCppBackend")
BACKENDS.register("transformers", "t2s_bench.backends.transformers_hf:TransformersBackend")
BACKENDS.register("openai", "t2s_bench.backends.openai_compat:OpenAICompatBackend")


def register_backend(name: str, *, replace: bool = False):
    """Class decorator: make a `Backend` subclass available as `get_backend(name)`."""

    def decorate(cls: type[Backend]) -> type[Backend]:
        BACKENDS.register(name, cls, replace=replace)
        cls.name = name
        return cls

    return decorate


def get_backend(name: str, **kwargs) -> Backend:
    """Instantiate the backend registered as `name` with `kwargs` (checked against its constructor)."""
    return BACKENDS.create(name, **kwargs)


def truncate_at_stop(text: str, stop: list[str] | None) -> tuple[str, bool]:
    """Cut `text` at the earliest stop string; returns (text, whether a stop string was found)."""
    cut = min((i for s in stop or [] if s and (i := text.find(s)) >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)
