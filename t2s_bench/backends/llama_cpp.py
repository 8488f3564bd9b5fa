"""GGUF models through llama-cpp-python (CPU, or GPU offload with `n_gpu_layers`).

Prompts are rendered with the GGUF's own chat template and generated greedily. One `Llama`
object serves every request and keeps the KV cache of the system turn (instructions + schema):
consecutive prompts with the same system message only evaluate the question. Only that whole
turn is reused, never a longer prefix shared by chance with the previous prompt, so that each
answer is the same whatever was generated before it (resumed runs equal uninterrupted ones).
`reuse_prefix=False` resets the state before each request (the naive baseline).

`parallel=N` (N > 1; the default on the CPU) decodes up to N requests together instead: the
requests of one `generate` call are grouped by their first message (the system turn), and each
group runs in parallel llama.cpp sequences that share the prefix's KV cells
(`llama_cpp_batch.PrefixSharingDecoder`) when the shared prefix is at least as long as the rest of
its prompts (otherwise one at a time, in the same decoder); the shared prefix stays cached between calls.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from t2s_bench.backends.base import (
    Backend,
    Generation,
    GenerationRequest,
    expand_samples,
    merge_samples,
    register_backend,
)
from t2s_bench.backends.catalog import CATALOG, default_model, file_fingerprint, resolve_model

log = logging.getLogger(__name__)
_PARAMS_LOCK = threading.Lock()
# sequences decoded together on the CPU when `parallel` is not given (see benchmarks/bench_prefix_cache.py)
DEFAULT_CPU_PARALLEL = 8


def _cpu_has_amx() -> bool:
    try:
        return "amx_int8" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


@contextmanager
def _model_params(**overrides):
    """Set llama_model_params fields that `Llama()` does not expose, for the duration of one load.

    Used for `use_extra_bufts`: llama.cpp's AMX weight-repacking buffers crashed (segfault in
    decode) on an AMX Xeon VM with llama-cpp-python 0.3.36, so they are off by default where AMX exists.
    """
    import llama_cpp.llama_cpp as low

    original = low.llama_model_default_params

    def patched():
        params = original()
        for k, v in overrides.items():
            setattr(params, k, v)
        return params

    with _PARAMS_LOCK:
        low.llama_model_default_params = patched
        try:
            yield
        finally:
            low.llama_model_default_params = original


def load_llama(model_path: str | Path, **kwargs):
    """`llama_cpp.Llama` with this module's safe defaults (no AMX repacking buffers where AMX exists).

    Every place that opens a GGUF in llama.cpp should use this: quantised files (Q4_K, Q8_0)
    crashed in decode on an AMX CPU without it."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from llama_cpp import Llama

    with _model_params(use_extra_bufts=not _cpu_has_amx()):
        return Llama(model_path=str(model_path), **kwargs)


class _ChoosingProcessor:
    """A logits processor that picks each token with a `TokenChooser` and records its log-probability.
    Greedy: the logits pass unchanged (llama.cpp's greedy pick is the same token); sampled: only the
    chosen token stays finite, so llama.cpp's greedy pick takes it."""

    def __init__(self, request: GenerationRequest) -> None:
        from t2s_bench.backends.sampling import TokenChooser

        self.chooser = TokenChooser(request.temperature, request.top_p, request.seed or 0)
        self.sampled = request.sampled
        self.values: list[float] = []

    def __call__(self, input_ids, scores):
        import numpy as np

        token, logprob = self.chooser(scores)
        self.values.append(logprob)
        if not self.sampled:
            return scores
        out = np.full_like(scores, -np.inf)
        out[token] = 0.0
        return out


def _token_limit(max_tokens: int):
    """A hard cap on sampled tokens: llama-cpp-python skips its own `max_tokens` check while a
    multi-byte character is incomplete, so a generation could otherwise run past the limit."""
    from llama_cpp import StoppingCriteriaList

    sampled = 0

    def reached(input_ids, logits) -> bool:
        nonlocal sampled
        sampled += 1
        return sampled > max_tokens

    return StoppingCriteriaList([reached])


@register_backend("llama-cpp")
class LlamaCppBackend(Backend):
    def __init__(
        self,
        model: str | Path | None = None,
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_gpu_layers: int = 0,
        n_batch: int = 512,
        seed: int = 0,
        reuse_prefix: bool = True,
        parallel: int | None = None,
        chat_template: str | None = None,
        extra_buffers: bool | None = None,
        lora_path: str | Path | None = None,
        verbose: bool = False,
    ):
        # llama.cpp's OpenMP threads spin while waiting by default; on a shared or busy CPU that
        # made decoding 3x slower (4.8 vs 16.8 tokens/s, 2 threads, 0.5B). Sleep instead, unless
        # the user chose a policy. Must be set before llama.cpp's OpenMP runtime loads.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.model_id = str(model or default_model())
        self.model_path = resolve_model(self.model_id)
        self.lora_path = Path(lora_path) if lora_path else None
        if self.lora_path and not self.lora_path.is_file():
            raise FileNotFoundError(f"LoRA adapter {self.lora_path} not found (write one with "
                                    "`t2s-bench train export ADAPTER --lora-gguf`)")
        if not self.model_path.is_file():
            raise ValueError(f"llama-cpp needs a GGUF file, got {self.model_path}")
        self.n_threads = n_threads or max(1, min(os.cpu_count() or 1, 8))
        self.n_gpu_layers = n_gpu_layers
        self.seed = seed
        self.reuse_prefix = reuse_prefix
        if parallel is None:
            parallel = DEFAULT_CPU_PARALLEL if n_gpu_layers == 0 else 1
        if parallel < 1:
            raise ValueError(f"parallel must be >= 1, got {parallel}")
        # the naive baseline is one request at a time by definition
        self.parallel = parallel if reuse_prefix else 1
        self.extra_buffers = extra_buffers if extra_buffers is not None else not _cpu_has_amx()
        # with parallel decoding the `Llama` only tokenizes: a small context, the decoder has its own
        own_ctx = n_ctx if self.parallel == 1 else min(n_ctx, 256)
        with _model_params(use_extra_bufts=self.extra_buffers):
            self._llm = Llama(
                model_path=str(self.model_path),
                n_ctx=own_ctx,
                n_batch=min(n_batch, own_ctx),
                n_threads=self.n_threads,
                n_threads_batch=self.n_threads,
                n_gpu_layers=n_gpu_layers,
                seed=seed,
                lora_path=str(self.lora_path) if self.lora_path else None,  # a GGUF LoRA (`train export --lora-gguf`)
                verbose=verbose,
            )
        self._decoder = None
        self._system_turn: list[int] | None = None  # tokens the one-at-a-time path keeps cached
        if self.parallel > 1:
            from t2s_bench.backends.llama_cpp_batch import PrefixSharingDecoder

            self._decoder = PrefixSharingDecoder(
                self._llm, parallel=self.parallel, n_ctx=n_ctx, n_threads=self.n_threads, n_ubatch=min(n_batch, n_ctx)
            )
        self.context_window = self._decoder.n_ctx if self._decoder else self._llm.n_ctx()
        self.chat_template = chat_template or self._llm.metadata.get("tokenizer.chat_template")
        if not self.chat_template:
            raise ValueError(f"{self.model_path.name} has no tokenizer.chat_template; pass chat_template=")
        self._bos_text = self._token_text(self._llm.token_bos())
        self._formatter = Jinja2ChatFormatter(
            self.chat_template, eos_token=self._token_text(self._llm.token_eos()), bos_token=self._bos_text
        )
        # prompt tokens evaluated vs. taken from the KV cache, over this backend's life
        self.prefix_stats = {"prompt_tokens": 0, "reused_tokens": 0}

    def _token_text(self, token_id: int) -> str:
        if token_id is None or token_id < 0:
            return ""
        return self._llm.detokenize([token_id], special=True).decode("utf-8", errors="replace")

    # -------------------------------------------------------------- prompt

    def render(self, messages: list[dict[str, str]]) -> str:
        """The chat-formatted prompt text, ending with the assistant turn's opening."""
        return self._formatter(messages=messages).prompt

    def tokenize_chat(self, messages: list[dict[str, str]]) -> list[int]:
        prompt = self.render(messages)
        add_bos = not (self._bos_text and prompt.startswith(self._bos_text))
        return self._llm.tokenize(prompt.encode("utf-8"), add_bos=add_bos, special=True)

    def count_tokens(self, messages: list[dict[str, str]]) -> int:
        return len(self.tokenize_chat(messages))

    # -------------------------------------------------------------- generation

    def _system_turn_length(self, messages: list[dict[str, str]], tokens: list[int]) -> int:
        """How many of `tokens` (the whole prompt) are the system turn's (0 without one)."""
        from t2s_bench.backends.llama_cpp_batch import common_prefix_length

        if not messages or messages[0].get("role") != "system":
            return 0
        return min(common_prefix_length(self.tokenize_chat(messages[:1]), tokens), len(tokens) - 1)

    def _load_system_turn(self, messages: list[dict[str, str]], tokens: list[int]) -> int:
        """Leave the KV cache holding exactly the prompt's system turn (its first `boundary` tokens),
        evaluated on its own from position 0; returns the tokens reused from the cache.

        The prompt is then evaluated from `boundary` on, a point set by this request alone. Reusing
        the longest prefix shared with the *previous* prompt (llama-cpp-python's own behaviour)
        splits the evaluation where the previous prompt happened to differ, and llama.cpp's results
        depend on that split in the last bits: answers would depend on what came before them, and
        a resumed run would differ from an uninterrupted one."""
        boundary = self._system_turn_length(messages, tokens)
        prefix = tokens[:boundary]
        if self._system_turn == prefix and self._llm.n_tokens >= boundary:
            self._llm.n_tokens = boundary  # create_completion evaluates the rest
            return boundary
        self._llm.reset()
        self._system_turn = None
        if prefix:
            self._llm.eval(prefix)
            self._system_turn = prefix
        return 0

    def generate(self, requests: list[GenerationRequest]) -> list[Generation]:
        # one single-answer request per sample, seeded (the backend's seed when a request has none)
        flat, owners = expand_samples(requests, self.seed)
        if self._decoder is not None:
            return merge_samples(requests, self._generate_batched(flat), owners)
        return merge_samples(requests, [self._generate_one(r) for r in flat], owners)

    def _too_long(self, n_tokens: int, elapsed: float) -> Generation:
        return Generation("", n_tokens, 0, elapsed, None,
                          f"prompt of {n_tokens} tokens does not fit the context window of {self.context_window}")

    def _generate_batched(self, requests: list[GenerationRequest]) -> list[Generation]:
        """Requests grouped by first message; each group decoded together (see llama_cpp_batch).

        A request's latency_s is its tokenization time plus its share of its group's wall time."""
        from t2s_bench.backends.llama_cpp_batch import BatchItem

        results: list[Generation | None] = [None] * len(requests)
        groups: dict[str, list[tuple[int, BatchItem, float]]] = {}
        for i, request in enumerate(requests):
            start = time.perf_counter()
            tokens = self.tokenize_chat(request.messages)
            room = self.context_window - len(tokens)
            if room < 1:
                results[i] = self._too_long(len(tokens), time.perf_counter() - start)
                continue
            item = BatchItem(tokens, min(request.max_tokens, room), request.stop,
                             request.temperature, request.top_p, request.seed or 0)
            key = json.dumps(request.messages[:1], sort_keys=True)
            groups.setdefault(key, []).append((i, item, time.perf_counter() - start))
        for key, members in groups.items():
            start = time.perf_counter()
            items = [item for _, item, _ in members]
            try:
                outs = self._decoder.run(items, max_prefix=self._system_turn_length(json.loads(key), items[0].tokens))
            except (RuntimeError, ValueError) as e:
                self._decoder.reset()
                share = (time.perf_counter() - start) / len(members)
                for i, item, tok_s in members:
                    results[i] = Generation("", len(item.tokens), 0, tok_s + share, None, f"llama.cpp: {e}")
                continue
            for (i, item, tok_s), out in zip(members, outs):
                self.prefix_stats["prompt_tokens"] += len(item.tokens)
                self.prefix_stats["reused_tokens"] += out.reused_tokens
                results[i] = Generation(
                    text=out.text,
                    prompt_tokens=len(item.tokens),
                    completion_tokens=out.completion_tokens,
                    latency_s=tok_s + out.latency_s,
                    finish_reason=out.finish_reason,
                    token_logprobs=out.token_logprobs,
                )
        return results  # type: ignore[return-value]

    def _generate_one(self, request: GenerationRequest) -> Generation:
        start = time.perf_counter()
        tokens = self.tokenize_chat(request.messages)
        room = self.context_window - len(tokens)
        if room < 1:
            return self._too_long(len(tokens), time.perf_counter() - start)
        self.prefix_stats["prompt_tokens"] += len(tokens)
        if self.reuse_prefix:
            self.prefix_stats["reused_tokens"] += self._load_system_turn(request.messages, tokens)
        else:
            self._llm.reset()
        max_tokens = min(request.max_tokens, room)
        from llama_cpp import LogitsProcessorList

        recorder = _ChoosingProcessor(request)
        try:
            out = self._llm.create_completion(
                prompt=tokens,
                max_tokens=max_tokens,
                temperature=0.0,
                top_k=1,
                repeat_penalty=1.0,
                stop=request.stop or None,
                seed=self.seed,
                stopping_criteria=_token_limit(max_tokens),
                logits_processor=LogitsProcessorList([recorder]),
            )
        except (RuntimeError, ValueError) as e:
            self._llm.reset()
            self._system_turn = None
            return Generation("", len(tokens), 0, time.perf_counter() - start, None, f"llama.cpp: {e}")
        choice = out["choices"][0]
        n_out = out["usage"]["completion_tokens"]
        return Generation(
            text=choice["text"],
            prompt_tokens=out["usage"]["prompt_tokens"],
            completion_tokens=n_out,
            latency_s=time.perf_counter() - start,
            finish_reason="length" if n_out >= max_tokens else choice.get("finish_reason"),
            token_logprobs=recorder.values[:n_out],
        )

    # -------------------------------------------------------------- identity

    def config(self) -> dict:
        import llama_cpp

        fp = file_fingerprint(self.model_path)
        return {
            "backend": self.name,
            "model": self.model_id if self.model_id in CATALOG else str(self.model_path),
            "model_file": self.model_path.name,
            "model_sha256": fp["sha256"],
            "model_size": fp["size"],
            "chat_template_sha256": hashlib.sha256(self.chat_template.encode()).hexdigest(),
            **({"lora": str(self.lora_path), "lora_sha256": file_fingerprint(self.lora_path)["sha256"]}
               if self.lora_path else {}),
            "params": {
                "n_ctx": self.context_window,
                "n_gpu_layers": self.n_gpu_layers,
                "extra_buffers": self.extra_buffers,
                "seed": self.seed,
                "reuse_prefix": self.reuse_prefix,
                "parallel": self.parallel,
                "temperature": 0.0,
            },
            "llama_cpp_python": llama_cpp.__version__,
        }

    def close(self) -> None:
        if getattr(self, "_decoder", None) is not None:
            self._decoder.close()  # before the model it runs on
            self._decoder = None
        if getattr(self, "_llm", None) is not None:
            self._llm.close()
            self._llm = None
