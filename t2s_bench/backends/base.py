"""The backend contract: chat requests in, generations out; plus the backend registry."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

from t2s_bench.registry import Registry


@dataclass
class GenerationRequest:
    """One prompt. Greedy by default; `temperature > 0` samples, `n` answers at once (see `Generation.samples`);
    `num_beams > 1` asks for beam search, whose beams come back best first in `Generation.samples`, each with
    its `score` (backends with `supports_beam_search` only).

    Sampling is reproducible: sample k of a request uses the seed `sample_seed(seed, k)`, and `seed=None`
    means the backend's own seed (0 unless configured)."""

    messages: list[dict[str, str]]  # [{"role": "system"|"user"|"assistant", "content": ...}]
    max_tokens: int = 256
    stop: list[str] | None = None
    n: int = 1  # answers wanted (n > 1 needs temperature > 0)
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0  # nucleus sampling: the smallest set of tokens holding this probability
    seed: int | None = None
    num_beams: int = 1  # > 1: beam search, all `num_beams` beams returned

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")
        if self.num_beams < 1:
            raise ValueError(f"num_beams must be >= 1, got {self.num_beams}")
        if self.num_beams > 1 and (self.n > 1 or self.temperature > 0):
            raise ValueError("beam search (num_beams > 1) is deterministic: it needs n=1 and temperature 0")
        if self.temperature < 0 or not 0 < self.top_p <= 1:
            raise ValueError(f"need temperature >= 0 and 0 < top_p <= 1, got {self.temperature}, {self.top_p}")
        if self.n > 1 and self.temperature == 0:
            raise ValueError("n > 1 answers need temperature > 0 (greedy decoding gives one answer)")

    @property
    def sampled(self) -> bool:
        return self.temperature > 0


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
    # n > 1: all n answers, the first included (beam search: the beams, best first); this Generation
    # repeats the first one's text, finish reason and logprobs, and its completion_tokens and latency_s
    # are the totals over the n answers
    samples: list[Generation] | None = None
    # beam search: the beam's score, transformers' `sequences_scores` (sum of token log-probabilities,
    # the end token included, / generated length ** length_penalty); None otherwise
    score: float | None = None

    @property
    def answers(self) -> list[Generation]:
        """Every answer to the request: the n samples, or this one."""
        return self.samples if self.samples else [self]


class Backend(ABC):
    """A model provider. Generation is greedy unless a request asks to sample, and sampling is seeded,
    so runs are reproducible."""

    name: ClassVar[str] = ""
    context_window: int
    supports_beam_search: ClassVar[bool] = False  # honours GenerationRequest.num_beams > 1

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
BACKENDS.register("vllm", "t2s_bench.backends.vllm_backend:VLLMBackend")  # optional: needs vllm and a GPU


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


def sample_seed(seed: int, k: int) -> int:
    """The seed of answer k of a request seeded `seed` (backends that sample one answer per call)."""
    return (seed * 1_000_003 + k) % 2**31


def expand_samples(requests: list[GenerationRequest], default_seed: int = 0) -> tuple[list[GenerationRequest], list[int]]:
    """One single-answer request per answer wanted, each with its own seed; and the owning request of each.
    For backends that produce one answer per call; `merge_samples` folds the answers back."""
    from dataclasses import replace

    refuse_beam_search(requests)
    flat, owners = [], []
    for i, r in enumerate(requests):
        if r.n == 1 and not r.sampled:
            flat.append(r)
        else:
            seed = default_seed if r.seed is None else r.seed
            flat.extend(replace(r, n=1, seed=sample_seed(seed, k)) for k in range(r.n))
        owners.extend([i] * (r.n if r.sampled else 1))
    return flat, owners


def refuse_beam_search(requests: list[GenerationRequest], backend: str = "this backend") -> None:
    """A clear error for a beam-search request sent to a backend without beam search."""
    beams = max((r.num_beams for r in requests), default=1)
    if beams > 1:
        raise ValueError(f"{backend} has no beam search (num_beams={beams}): use the transformers backend "
                         "(--backend transformers) for beams, or self-consistency (-S samples=N) with this one")


def merge_samples(requests: list[GenerationRequest], flat: list[Generation], owners: list[int]) -> list[Generation]:
    """One Generation per request from the answers of `expand_samples`'s requests (in that order)."""
    answers: list[list[Generation]] = [[] for _ in requests]
    for owner, gen in zip(owners, flat):
        answers[owner].append(gen)
    return [with_samples(gens) if r.n > 1 else gens[0] for r, gens in zip(requests, answers)]


def with_samples(answers: list[Generation]) -> Generation:
    """The Generation of an n-answer request: the first answer's text, the totals, all answers."""
    from dataclasses import replace

    first = answers[0]
    return replace(
        first,
        completion_tokens=sum(a.completion_tokens for a in answers),
        latency_s=sum(a.latency_s for a in answers),
        error=first.error if all(a.error for a in answers) else None,
        samples=list(answers),
    )
