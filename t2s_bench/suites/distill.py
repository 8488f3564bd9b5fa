"""Distillation: keep the neighbour databases that tell gold queries apart from their near misses.

For one database (as the test-suite paper, Zhong, Yu and Klein, EMNLP 2020, does):

1. every gold query gets its near-miss mutants (`mutants.py`), prepared for execution as the
   scorer prepares queries (`> =` joined, DISTINCT removed unless kept), so a mutant the scorer
   cannot tell from the gold by construction is dropped;
2. on the original database, a mutant whose result differs from the gold's is already killed;
   the others *survive* and are the targets;
3. neighbour databases are generated in rounds of ``batch`` (`fuzz.py`), after the first round
   half of them focused on the values of one gold query that still has live targets; on each,
   every gold query must run (else the candidate is dropped: the gold must pass its own suite) and
   every live target is executed; a target whose result differs from its gold's is killed by that
   candidate, unless the gold's own result there is decided by tied rows (`ties.py`);
4. greedy set cover after each round, over the candidates generated so far: the one that kills the
   most live targets joins the suite, until none kills any or the suite is full (``size``); rounds
   go on until no target is alive, the candidate budget is spent, or ``patience`` rounds in a row
   kill nothing (what is left is likely equivalent to the gold, or needs rarer rows).

Queries run in this process through `execute_in_process` (the executor's read-only connection,
timeout and result bounds): they are gold queries and their mutants on a few rows per table,
and a worker round trip per query would cost more than the query.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from t2s_bench.datasets.schema import Schema
from t2s_bench.execution.executor import ExecResult, close_connections, execute_in_process
from t2s_bench.scoring.exec_match import ExecMatchOptions, exec_match
from t2s_bench.scoring.score import prepare_for_execution
from t2s_bench.sql.parse import has_order_by
from t2s_bench.suites.fuzz import Fuzzer
from t2s_bench.suites.mutants import mutants, render
from t2s_bench.suites.ties import tie_probes, ties_decide

BUILD_MAX_ROWS = 10_000
FOCUSED_SHARE = 0.5  # candidates generated around the values of one gold query with live targets


@dataclass
class Case:
    """A gold query, its mutants, and which of them survive the original database."""

    gold: str  # prepared for execution
    order_matters: bool
    mutants: list[tuple[str, str]]  # (kind, prepared SQL)
    survivors: list[int] = field(default_factory=list)  # mutant positions equal to the gold on the original
    tie_probes: tuple[str, str] | None = None  # see ties.py


@dataclass
class DistillStats:
    n_queries: int = 0
    n_gold_errors: int = 0  # gold queries that fail on the original (left out)
    n_mutants: int = 0
    n_killed_by_original: int = 0
    n_survivors: int = 0
    n_killed_by_suite: int = 0
    n_candidates: int = 0
    n_candidates_rejected: int = 0  # a gold query failed on them
    survivors_by_kind: Counter = field(default_factory=Counter)
    killed_by_kind: Counter = field(default_factory=Counter)
    seconds: float = 0.0

    def to_json(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if not isinstance(v, Counter)}
        out["seconds"] = round(self.seconds, 2)
        out["by_kind"] = {k: {"survivors": self.survivors_by_kind[k], "killed": self.killed_by_kind[k]}
                          for k in sorted(self.survivors_by_kind)}
        return out


def cases_for(gold_queries: list[str], schema: Schema | None, *, seed: int, keep_distinct: bool) -> list[Case]:
    cases, seen = [], set()
    for sql in gold_queries:
        gold = prepare_for_execution(sql, keep_distinct)
        if gold in seen:
            continue
        seen.add(gold)
        # a mutant the scorer's preparation makes identical to the gold (DISTINCT, when removed) is no mutant
        same = {_squash(gold), _squash(prepare_for_execution(render(sql) or sql, keep_distinct))}
        prepared: dict[str, str] = {}
        for m in mutants(sql, schema, seed=seed):
            text = prepare_for_execution(m.sql, keep_distinct)
            if _squash(text) not in same and text not in prepared:
                prepared[text] = m.kind
        cases.append(Case(gold, has_order_by(gold), [(k, t) for t, k in prepared.items()], tie_probes=tie_probes(gold)))
    return cases


def _squash(sql: str) -> str:
    return " ".join(sql.split())


def distill(db_path: Path, gold_queries: list[str], work_dir: Path, *, size: int, seed: int, db_id: str,
            candidates: int = 400, batch: int = 10, patience: int = 10, timeout: float = 5.0,
            keep_distinct: bool = False, keep_unique: bool = False) -> tuple[list[Path], DistillStats]:
    """Neighbour databases (at most `size`, in `work_dir`) that kill the survivors of the original."""
    start = time.perf_counter()
    stats = DistillStats()
    options = ExecMatchOptions(keep_distinct=keep_distinct)
    fuzzer = Fuzzer(db_path, gold_queries, keep_unique=keep_unique)
    cases = cases_for(gold_queries, fuzzer.schema, seed=seed, keep_distinct=keep_distinct)

    def run(path: Path, sql: str) -> ExecResult:
        return execute_in_process(path, sql, timeout=timeout, max_rows=BUILD_MAX_ROWS)

    kept_cases = []
    for case in cases:
        gold = run(db_path, case.gold)
        if not gold.ok or gold.truncated:
            stats.n_gold_errors += 1
            continue
        stats.n_mutants += len(case.mutants)
        for i, (kind, sql) in enumerate(case.mutants):
            if exec_match(gold, run(db_path, sql), order_matters=case.order_matters, options=options):
                case.survivors.append(i)
                stats.survivors_by_kind[kind] += 1
        stats.n_killed_by_original += len(case.mutants) - len(case.survivors)
        kept_cases.append(case)
    stats.n_queries = len(kept_cases)
    stats.n_survivors = sum(len(c.survivors) for c in kept_cases)
    close_connections()

    alive = {(ci, mi) for ci, c in enumerate(kept_cases) for mi in c.survivors}
    pool: list[tuple[Path, set]] = []  # candidates not chosen yet, with what they killed
    chosen: list[Path] = []
    rounds_without_kill = 0
    work_dir.mkdir(parents=True, exist_ok=True)
    while alive and len(chosen) < size and stats.n_candidates < candidates and rounds_without_kill < patience:
        killed_this_round = False
        for _ in range(min(batch, candidates - stats.n_candidates)):
            path = work_dir / f"candidate_{stats.n_candidates:04d}.sqlite"
            rng = random.Random(f"{seed}:{db_id}:{stats.n_candidates}")
            focus = None
            if stats.n_candidates >= batch and rng.random() < FOCUSED_SHARE:  # after a first blind round
                target = kept_cases[rng.choice(sorted(alive))[0]]
                focus = fuzzer.literal_pools([target.gold])
            fuzzer.write(path, rng, focus)
            stats.n_candidates += 1
            kills = _kills(path, kept_cases, alive, run, options)
            close_connections()
            if kills is None:
                stats.n_candidates_rejected += 1
            if kills:
                pool.append((path, kills))
                killed_this_round = True
            else:
                path.unlink(missing_ok=True)
        rounds_without_kill = 0 if killed_this_round else rounds_without_kill + 1
        while pool and len(chosen) < size:  # greedy: the candidate that kills the most live targets
            best = max(range(len(pool)), key=lambda i: (len(pool[i][1] & alive), -i))
            path, kills = pool[best]
            if not kills & alive:
                break
            pool.pop(best)
            chosen.append(path)
            alive -= kills
        for path, kills in pool:
            if not kills & alive:  # nothing left for it to kill
                path.unlink(missing_ok=True)
        pool = [(path, kills) for path, kills in pool if kills & alive]
    for path, _ in pool:
        path.unlink(missing_ok=True)
    killed = {(ci, mi) for ci, c in enumerate(kept_cases) for mi in c.survivors} - alive
    stats.n_killed_by_suite = len(killed)
    for ci, mi in killed:
        stats.killed_by_kind[kept_cases[ci].mutants[mi][0]] += 1
    stats.seconds = time.perf_counter() - start
    return chosen, stats


def _kills(path: Path, cases: list[Case], alive: set, run, options: ExecMatchOptions) -> set | None:
    """The live targets this candidate kills; None when a gold query fails on it. A gold query whose
    result there depends on the order of tied rows kills nothing there (the scorer ignores such a
    variant for that query)."""
    golds: dict[int, ExecResult] = {}
    for ci, case in enumerate(cases):
        res = run(path, case.gold)
        if not res.ok or res.truncated:
            return None
        if case.tie_probes is None or not ties_decide(*(run(path, probe) for probe in case.tie_probes)):
            golds[ci] = res  # else the gold's result here depends on how tied rows happen to come out
    return {(ci, mi) for ci, mi in alive if ci in golds
            and not exec_match(golds[ci], run(path, cases[ci].mutants[mi][1]),
                              order_matters=cases[ci].order_matters, options=options)}


def audit(db_path: Path, gold_queries: list[str], variants: list[Path], *, seed: int, keep_distinct: bool = False,
          timeout: float = 5.0) -> list[dict]:
    """Every mutant (of `seed`) that survives the original database, and whether the variants kill it,
    with the scorer's rules (tie-decided variants left out per query). For checking a built suite."""
    options = ExecMatchOptions(keep_distinct=keep_distinct)

    def run(path: Path, sql: str) -> ExecResult:
        return execute_in_process(path, sql, timeout=timeout, max_rows=BUILD_MAX_ROWS)

    out = []
    for case in cases_for(gold_queries, Schema.from_sqlite(db_path), seed=seed, keep_distinct=keep_distinct):
        gold = run(db_path, case.gold)
        if not gold.ok or gold.truncated:
            continue
        tests = []  # (variant gold result, variant) where the gold's result is not decided by ties
        for v in variants:
            res = run(v, case.gold)
            if res.ok and not (case.tie_probes and ties_decide(*(run(v, p) for p in case.tie_probes))):
                tests.append((res, v))
        for kind, sql in case.mutants:
            if not exec_match(gold, run(db_path, sql), order_matters=case.order_matters, options=options):
                continue  # killed by the original
            killed = any(not exec_match(res, run(v, sql), order_matters=case.order_matters, options=options)
                         for res, v in tests)
            out.append({"gold": case.gold, "kind": kind, "mutant": sql, "killed": killed})
    close_connections()
    return out
