"""First executable answer of a beam (CodeS's inference): beam search, then the best beam that runs.

Every prompted system takes `beams=B` (`-S beams=4`): the answer request asks the backend for beam
search with B beams (transformers only; `backends/hf_generation.generate_beams`), which come back best
first by their length-normalised log-probability. Each beam's SQL runs read-only on the question's
database (the executor the vote uses, with its timeout); the first beam that runs without error
is the answer (`beam_nonempty=true`: without error and with at least one row), and when none does,
the top beam stays. Every beam, its score, its execution error and the chosen one are recorded in the
prediction's trace. Beam search replaces the greedy answer, so it does not combine with
self-consistency's samples or with few-shot votes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from t2s_bench.backends.base import Generation
from t2s_bench.systems.base import Prediction, Task
from t2s_bench.systems.extract import extract_sql
from t2s_bench.systems.self_consistency import mean_logprob
from t2s_bench.systems.vote import VOTE_TIMEOUT_S


@dataclass(frozen=True)
class BeamSearch:
    beams: int = 4
    nonempty: bool = False  # an empty result counts as a failure too
    timeout: float = VOTE_TIMEOUT_S

    def __post_init__(self) -> None:
        if self.beams < 2:
            raise ValueError(f"beam search needs beams >= 2, got {self.beams} (beams=1 is the greedy answer)")

    def config(self) -> dict:
        return {"beams": self.beams, "nonempty": self.nonempty, "check_timeout_s": self.timeout,
                "ranking": "transformers beam search, length_penalty 1.0 (mean token log-probability)",
                "rule": "the first beam, best first, whose SQL runs without error"
                        + (" and returns rows" if self.nonempty else "") + "; none: the top beam"}

    def apply(self, tasks: list[Task], preds: list[Prediction], gens: list[Generation | None]) -> list[Prediction]:
        """`preds` (built from each beam request's top beam, same order as `tasks` and `gens`) replaced by
        each question's chosen beam. The beams of all questions are checked in one batch of executions."""
        todo = [i for i, (p, g) in enumerate(zip(preds, gens)) if g is not None and not p.error]
        sqls = {i: [extract_sql(a.text) for a in gens[i].answers] for i in todo}  # type: ignore[union-attr]
        failures = self.failures([(tasks[i].db_path, sql) for i in todo for sql in sqls[i]])
        out, at = list(preds), 0
        for i in todo:
            mine = failures[at: at + len(sqls[i])]
            at += len(sqls[i])
            out[i] = choose_beam(preds[i], gens[i], sqls[i], mine)  # type: ignore[arg-type]
        return out

    def failures(self, jobs: list[tuple[Path | None, str]]) -> list[str | None]:
        """Why each (database, SQL) does not count as executable, or None when it does."""
        from t2s_bench.execution.pool import execute_many

        runnable: list = [(db, sql) for db, sql in jobs if db is not None and sql.strip()]
        results = iter(execute_many(runnable, timeout=self.timeout, max_rows=1) if runnable else [])
        out: list[str | None] = []
        for db, sql in jobs:
            if db is None:
                out.append("missing database")
            elif not sql.strip():
                out.append("the answer contains no SQL query")
            else:
                r = next(results)
                out.append(r.error or ("timed out" if r.timed_out else None)
                           or ("empty result" if self.nonempty and not r.rows else None))
        return out


def choose_beam(top: Prediction, gen: Generation, sqls: list[str], failures: list[str | None]) -> Prediction:
    """The first beam without a failure (else the top beam), with every beam in the trace."""
    beams = gen.answers
    chosen = next((j for j, f in enumerate(failures) if f is None), 0)
    trace = [*top.trace]
    for j, (beam, sql, failure) in enumerate(zip(beams, sqls, failures)):
        trace.append({"stage": f"beam {j}", "sql": sql, "raw_output": beam.text, "error": failure,
                      "score": beam.score, "mean_logprob": mean_logprob(beam)})
    trace.append({"stage": "beam", "chosen": chosen, "error": None if failures[chosen] is None else
                  "no beam runs: the top beam stays"})
    return Prediction(
        index=top.index,
        db_id=top.db_id,
        sql=sqls[chosen],
        raw_output=beams[chosen].text,
        prompt=top.prompt,
        prompt_tokens=top.prompt_tokens,
        completion_tokens=top.completion_tokens,
        latency_s=top.latency_s,
        error=None,
        trace=trace,
    )
