"""Self-consistency by execution: N sampled answers per question plus the greedy one, a vote over their results.

Every prompted system takes `samples=N` (`-S samples=8`); the `self-consistency` system is zero-shot
with N=8. For each question, one batched backend request asks for N answers to the same prompt as the
greedy answer (temperature, top-p, a seed derived from the run's seed and the question's index, so an
answer does not depend on which questions share its batch). The candidates (greedy first) are run
read-only on the question's database and grouped by equal results (`vote.execution_vote`); the largest
group wins, and a tie between groups of the same size goes to the group holding the answer with the
highest mean token log-probability (then to the earlier group). Inside the winning group the answer
with the highest mean log-probability is returned. When no candidate runs, the greedy answer stays.
Every candidate, its mean log-probability and the groups are recorded in the prediction's trace.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from t2s_bench.backends.base import Backend, Generation, GenerationRequest, sample_seed
from t2s_bench.systems.base import Prediction, Task
from t2s_bench.systems.extract import extract_sql
from t2s_bench.systems.vote import execution_vote

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SelfConsistency:
    samples: int = 8
    temperature: float = 0.7
    top_p: float = 0.95
    seed: int = 0

    def __post_init__(self) -> None:
        if self.samples < 1 or self.temperature <= 0:
            raise ValueError(f"self-consistency needs samples >= 1 and temperature > 0, got {self.samples}, {self.temperature}")

    def config(self) -> dict:
        return {"samples": self.samples, "temperature": self.temperature, "top_p": self.top_p, "seed": self.seed,
                "candidates": "the greedy answer + the samples",
                "rule": "largest group of equal execution results; ties by the highest mean token log-probability"}

    def request(self, pred: Prediction, max_tokens: int) -> GenerationRequest:
        return GenerationRequest(messages=pred.prompt, max_tokens=max_tokens, n=self.samples, temperature=self.temperature,
                                 top_p=self.top_p, seed=sample_seed(self.seed, pred.index))

    def apply(self, backend: Backend, tasks: list[Task], preds: list[Prediction], max_tokens: int,
              greedy_scores: list[float | None] | None = None) -> list[Prediction]:
        """`preds` (the greedy answers, same order as `tasks`, with their mean token log-probabilities
        when known) replaced by each question's voted answer."""
        todo = [i for i, p in enumerate(preds) if not p.error and p.prompt]
        if not todo:
            return preds
        start = time.perf_counter()
        try:
            gens = backend.generate([self.request(preds[i], max_tokens) for i in todo])
        except Exception as e:  # the greedy answers stay; the failure is on record
            log.exception("sampling failed on a batch of %d", len(todo))
            for i in todo:
                preds[i].trace.append({"stage": "self-consistency", "sql": preds[i].sql, "raw_output": "",
                                       "error": f"backend error: {type(e).__name__}: {e}"})
                preds[i].latency_s += (time.perf_counter() - start) / len(todo)
            return preds
        out = list(preds)
        for i, gen in zip(todo, gens):
            out[i] = vote_candidates(preds[i], greedy_scores[i] if greedy_scores else None, gen, tasks[i])
        return out


def mean_logprob(gen: Generation) -> float | None:
    lp = gen.token_logprobs
    return sum(lp) / len(lp) if lp else None


def vote_candidates(greedy: Prediction, greedy_score: float | None, sampled: Generation, task: Task) -> Prediction:
    """The voted answer among the greedy prediction and the sampled answers, with the trace."""
    answers = [a for a in sampled.answers if not a.error]
    sqls = [greedy.sql] + [extract_sql(a.text) for a in answers]
    raws = [greedy.raw_output] + [a.text for a in answers]
    scores = [greedy_score] + [mean_logprob(a) for a in answers]
    _, groups = execution_vote(sqls, task.db_path)
    chosen_group = _pick_group(groups, scores)
    chosen = max(chosen_group, key=lambda j: (_score(scores[j]), -j)) if chosen_group else 0
    trace = [*greedy.trace]
    for j, (sql, raw) in enumerate(zip(sqls, raws)):
        trace.append({"stage": "greedy" if j == 0 else f"sample {j - 1}", "sql": sql, "raw_output": raw,
                      "error": None, "mean_logprob": scores[j]})
    trace.append({"stage": "self-consistency", "groups": groups, "chosen": chosen,
                  "error": sampled.error if not answers else None})
    return Prediction(
        index=greedy.index,
        db_id=greedy.db_id,
        sql=sqls[chosen],
        raw_output=raws[chosen],
        prompt=greedy.prompt,
        prompt_tokens=greedy.prompt_tokens + sampled.prompt_tokens,
        completion_tokens=greedy.completion_tokens + sampled.completion_tokens,
        latency_s=greedy.latency_s + sampled.latency_s,
        error=None,
        trace=trace,
    )


def _score(value: float | None) -> float:
    return float("-inf") if value is None else value


def _pick_group(groups: list[list[int]], scores: list[float | None]) -> list[int]:
    """The largest group; among groups of that size, the one whose best answer is the most probable."""
    if not groups:
        return []
    top = max(len(g) for g in groups)
    tied = [g for g in groups if len(g) == top]
    return max(tied, key=lambda g: (max(_score(scores[j]) for j in g), -g[0]))
