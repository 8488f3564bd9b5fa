"""Batched greedy decoding of prompts that share a token prefix, in parallel llama.cpp sequences.

What llama-server does with parallel slots, inside one process. A second llama.cpp context on the
already loaded model holds a unified KV cache with `parallel + 1` sequences:

- sequence 0 holds the shared prefix (chat template + instructions + schema); it is evaluated
  once and kept between calls, so the next group with the same prefix starts from it (only the
  part that differs from the cached tokens is evaluated, as in llama-cpp-python's own reuse);
- each request gets a sequence of its own that starts as a copy of sequence 0
  (`llama_memory_seq_cp`: with a unified cache the copy shares the prefix cells, nothing is
  recomputed), then its remaining prompt tokens are evaluated;
- all active sequences are decoded together, one `llama_decode` per step, greedily (argmax of the
  logits) or, for an item with a temperature, by its own seeded sampler (`sampling.TokenChooser`),
  until each reaches an end-of-generation token, its `max_tokens` or a stop string.
  A request waiting for a free sequence (or for KV room) joins as soon as one finishes: its prompt
  suffix is evaluated in the same `llama_decode` as the others' next tokens.

Text is kept as bytes per sequence and decoded once at the end (errors ignored, as
llama-cpp-python does), so multi-byte characters split over tokens come out whole.
"""

from __future__ import annotations

import ctypes
import time
from collections import deque
from dataclasses import dataclass, field

from t2s_bench.backends.sampling import TokenChooser

PREFIX_SEQ = 0


@dataclass
class BatchItem:
    tokens: list[int]
    max_tokens: int  # > 0, and len(tokens) + max_tokens <= the context size
    stop: list[str] | None = None
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0
    seed: int = 0


@dataclass
class BatchResult:
    text: str
    completion_tokens: int
    finish_reason: str  # "stop" | "length"
    latency_s: float  # this request's share of the group's wall time (see `PrefixSharingDecoder.run`)
    reused_tokens: int  # prompt tokens this request did not evaluate itself
    token_logprobs: list[float] = field(default_factory=list)  # log-probability of each generated token


@dataclass
class _Sequence:
    index: int
    item: BatchItem
    seq_id: int
    reserved_cells: int
    next_pos: int = 0
    out_tokens: list[int] = field(default_factory=list)
    out_logprobs: list[float] = field(default_factory=list)
    out_bytes: bytearray = field(default_factory=bytearray)
    finish_reason: str | None = None
    text_end: int | None = None  # byte offset of a stop string, when one was found
    latency_s: float = 0.0
    chooser: TokenChooser = field(default_factory=TokenChooser)

    def __post_init__(self) -> None:
        self.chooser = TokenChooser(self.item.temperature, self.item.top_p, self.item.seed)


def common_prefix_length(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def ends_in_incomplete_utf8(data: bytes | bytearray) -> bool:
    """True when `data` ends inside a multi-byte UTF-8 character (more bytes still to come)."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 == 0x80:  # continuation byte: look further back for the lead byte
            continue
        if byte >= 0xF0:
            width = 4
        elif byte >= 0xE0:
            width = 3
        elif byte >= 0xC0:
            width = 2
        else:
            width = 1
        return width > back
    return False


class PrefixSharingDecoder:
    """Greedy batched generation on a second context of a loaded `llama_cpp.Llama`."""

    def __init__(self, llm, *, parallel: int, n_ctx: int, n_threads: int, n_ubatch: int = 512):
        import llama_cpp.llama_cpp as low
        from llama_cpp import _internals

        self._low = low
        params = low.llama_context_default_params()
        params.n_ctx = n_ctx
        params.n_batch = n_ctx  # one llama_decode may carry every sequence's prompt suffix
        params.n_ubatch = min(n_ubatch, n_ctx)
        params.n_seq_max = parallel + 1
        params.kv_unified = True  # copied sequences share the prefix cells
        params.n_threads = params.n_threads_batch = n_threads
        params.flash_attn_type = low.LLAMA_FLASH_ATTN_TYPE_DISABLED  # as the `Llama` context
        self._ctx = _internals.LlamaContext(model=llm._model, params=params, verbose=False)
        if getattr(llm, "_lora_adapter", None) is not None:  # a runtime LoRA adapter applies to this context too
            import ctypes

            adapters = (low.llama_adapter_lora_p_ctypes * 1)(llm._lora_adapter)
            if low.llama_set_adapters_lora(self._ctx.ctx, adapters, 1, (ctypes.c_float * 1)(llm.lora_scale)):
                raise RuntimeError("llama.cpp refused the LoRA adapter on the batched decoder's context")
        self._batch = _internals.LlamaBatch(n_tokens=n_ctx, embd=0, n_seq_max=1, verbose=False)
        self._memory = self._ctx.memory
        self._vocab = llm._model.vocab
        self._n_vocab = low.llama_vocab_n_tokens(self._vocab)
        self.n_ctx = low.llama_n_ctx(self._ctx.ctx)
        self.parallel = parallel
        self._prefix: list[int] = []  # tokens held by PREFIX_SEQ
        self._pieces: dict[int, bytes] = {}

    # ------------------------------------------------------------------ low level

    def _piece(self, token: int) -> bytes:
        piece = self._pieces.get(token)
        if piece is None:
            size = 64
            buf = ctypes.create_string_buffer(size)
            n = self._low.llama_token_to_piece(self._vocab, token, buf, size, 0, False)
            if n < 0:  # buffer too small: -n is the size needed
                size = -n
                buf = ctypes.create_string_buffer(size)
                n = self._low.llama_token_to_piece(self._vocab, token, buf, size, 0, False)
            piece = self._pieces[token] = buf.raw[:n]
        return piece

    def _decode(self, entries: list[tuple[int, int, int, bool]]) -> None:
        """One llama_decode of (token, position, sequence, wants_logits) entries."""
        b = self._batch.batch
        for j, (token, pos, seq_id, logits) in enumerate(entries):
            b.token[j] = token
            b.pos[j] = pos
            b.n_seq_id[j] = 1
            b.seq_id[j][0] = seq_id
            b.logits[j] = logits
        b.n_tokens = len(entries)
        rc = self._low.llama_decode(self._ctx.ctx, b)
        if rc != 0:
            raise RuntimeError(f"llama_decode returned {rc} for a batch of {len(entries)} tokens")

    def _choose(self, batch_index: int, s: _Sequence) -> tuple[int, float]:
        """The sequence's next token (greedy, or sampled by its chooser) and its log-probability."""
        import numpy as np

        logits = np.ctypeslib.as_array(self._low.llama_get_logits_ith(self._ctx.ctx, batch_index), shape=(self._n_vocab,))
        return s.chooser(logits)

    def _drop(self, seq_id: int) -> None:
        self._low.llama_memory_seq_rm(self._memory, seq_id, -1, -1)

    def reset(self) -> None:
        """Forget everything (after a failed decode)."""
        self._low.llama_memory_clear(self._memory, True)
        self._prefix = []

    def _load_prefix(self, prefix: list[int]) -> int:
        """Make PREFIX_SEQ hold `prefix`; returns how many of its tokens were already cached.

        The cached prefix is kept only when it is exactly `prefix`; anything else clears the cache
        and evaluates `prefix` from position 0. Evaluating just the part after a partly shared
        prefix splits the computation at a point set by the *previous* call, and llama.cpp's
        results depend (in the last bits, enough to flip near-ties) on how a prompt is split into
        batches: an answer would then depend on what was generated before it, and a resumed run
        would differ from an uninterrupted one. A full clear and re-evaluation gives the same bits
        as a fresh context (tests/core/test_resume_determinism.py checks both)."""
        if prefix and prefix == self._prefix:
            return len(prefix)
        self.reset()
        if prefix:
            self._decode([(t, k, PREFIX_SEQ, k == len(prefix) - 1) for k, t in enumerate(prefix)])
            self._prefix = list(prefix)
        return 0

    # ------------------------------------------------------------------ generation

    def width(self, prefix: list[int], items: list[BatchItem]) -> int:
        """Sequences decoded together: `parallel` when the shared prefix is at least as long as the
        average unshared part, else 1. In a unified KV cache every token attends over all sequences'
        cells, so long unshared suffixes (few-shot prompts: ~50 shared of ~450 tokens) made parallel
        decoding 1.3x slower than one at a time, while zero-shot prompts (~250 shared, ~30 own) gain."""
        unshared = sum(len(it.tokens) - len(prefix) for it in items) / len(items)
        return self.parallel if len(prefix) >= unshared else 1

    def run(self, items: list[BatchItem], max_prefix: int | None = None) -> list[BatchResult]:
        """Generate for `items` (which should share a prefix), `parallel` sequences at a time.

        max_prefix: the shared prefix kept in PREFIX_SEQ is at most this long (the backend passes
        the system turn's length, so that consecutive calls share the exact same prefix).

        latency_s: each `llama_decode` step is shared equally by the sequences in it, the rest (the
        prefix evaluation, bookkeeping) equally by all items; the latencies add up to the wall time
        of the call.
        """
        start = time.perf_counter()
        n = len(items)
        # leave every item at least one prompt token of its own: its logits give the first token
        shared = min(len(it.tokens) for it in items) - 1
        for it in items[1:]:
            shared = min(shared, common_prefix_length(items[0].tokens, it.tokens))
        if max_prefix is not None:
            shared = min(shared, max_prefix)
        prefix = items[0].tokens[:max(shared, 0)]
        cached = self._load_prefix(prefix)

        kv_room = self.n_ctx - len(prefix)
        reserved = 0
        pending = deque(range(n))
        free_seqs = list(range(self.width(prefix, items), 0, -1))
        active: list[_Sequence] = []
        done: dict[int, _Sequence] = {}
        try:
            while pending or active:
                entries: list[tuple[int, int, int, bool]] = []
                readers: list[tuple[_Sequence, int]] = []  # (sequence, batch index of its logits)
                for s in active:
                    entries.append((s.out_tokens[-1], s.next_pos, s.seq_id, True))
                    readers.append((s, len(entries) - 1))
                    s.next_pos += 1
                while pending and free_seqs:
                    it = items[pending[0]]
                    need = len(it.tokens) - len(prefix) + it.max_tokens
                    if active and reserved + need > kv_room:
                        break  # wait until a running sequence frees its cells
                    s = _Sequence(pending.popleft(), it, free_seqs.pop(), need)
                    reserved += need
                    self._low.llama_memory_seq_cp(self._memory, PREFIX_SEQ, s.seq_id, -1, -1)
                    suffix = it.tokens[len(prefix):]
                    for k, t in enumerate(suffix):
                        entries.append((t, len(prefix) + k, s.seq_id, k == len(suffix) - 1))
                    readers.append((s, len(entries) - 1))
                    s.next_pos = len(it.tokens)
                    active.append(s)
                step_start = time.perf_counter()
                self._decode(entries)
                for s, batch_index in readers:
                    self._accept(s, *self._choose(batch_index, s))
                step_share = (time.perf_counter() - step_start) / len(readers)
                for s, _ in readers:
                    s.latency_s += step_share
                for s in [s for s in active if s.finish_reason]:
                    active.remove(s)
                    self._drop(s.seq_id)
                    free_seqs.append(s.seq_id)
                    reserved -= s.reserved_cells
                    done[s.index] = s
        except Exception:
            for s in active:
                self._drop(s.seq_id)
            raise

        overhead = (time.perf_counter() - start - sum(s.latency_s for s in done.values())) / n
        results = []
        for i in range(n):
            s = done[i]
            raw = bytes(s.out_bytes[: s.text_end])
            results.append(BatchResult(
                text=raw.decode("utf-8", errors="ignore"),
                completion_tokens=len(s.out_tokens),
                finish_reason=s.finish_reason,
                latency_s=s.latency_s + overhead,
                reused_tokens=cached if i == 0 else len(prefix),  # the first item pays for the prefix
                token_logprobs=s.out_logprobs,
            ))
        return results

    def _accept(self, s: _Sequence, token: int, logprob: float = 0.0) -> None:
        """Record the sampled token, or finish the sequence (eog / stop string / max_tokens)."""
        if self._low.llama_vocab_is_eog(self._vocab, token):
            s.finish_reason = "stop"  # the end-of-generation token is not counted, as in llama-cpp-python
            return
        s.out_tokens.append(token)
        s.out_logprobs.append(logprob)
        s.out_bytes += self._piece(token)
        if s.item.stop and not ends_in_incomplete_utf8(s.out_bytes):
            hits = [i for stop in s.item.stop if stop and (i := s.out_bytes.find(stop.encode("utf-8"))) >= 0]
            if hits:
                s.text_end = min(hits)
                s.finish_reason = "stop"
                return
        if len(s.out_tokens) >= s.item.max_tokens:
            s.finish_reason = "length"

    def close(self) -> None:
        if getattr(self, "_batch", None) is not None:
            self._batch.close()
            self._batch = None
        if getattr(self, "_ctx", None) is not None:
            self._ctx.close()
            self._ctx = None
