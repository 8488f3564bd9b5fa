"""Execution-consistency voting over the predictions of earlier runs (self-consistency by execution).

`vote` is a system whose members are run directories: for each question it executes every member's
SQL read-only on the question's database, groups the answers that return the same result (the
scorer's own result equality, column order and row order ignored), and answers with the largest
group; ties go to the member listed first, and when no answer runs, the first member's answer stays.
The members' predictions are cached work, so an ensemble costs executions, not generations.

    t2s-bench run --system vote --members runs/zero-shot runs/few-shot runs/rag --dataset spider-dev
"""

from __future__ import annotations

from pathlib import Path

from t2s_bench.rundir import RunDir
from t2s_bench.systems.base import Prediction, Task

VOTE_TIMEOUT_S = 10.0


def execution_vote(sqls: list[str], db_path: Path | None, timeout: float = VOTE_TIMEOUT_S) -> tuple[int, list[list[int]]]:
    """(index of the chosen SQL, groups of indices with equal results, largest first)."""
    from t2s_bench.execution import execute
    from t2s_bench.scoring.exec_match import results_equal

    groups: list[list[int]] = []
    rows: list[list] = []
    for i, sql in enumerate(sqls):
        if not sql.strip() or db_path is None:
            continue
        result = execute(db_path, sql, timeout=timeout)
        if not result.ok:
            continue
        for group, representative in zip(groups, rows):
            if results_equal(representative, result.rows, order_matters=False):
                group.append(i)
                break
        else:
            groups.append([i])
            rows.append(result.rows)
    groups.sort(key=lambda g: (-len(g), g[0]))  # stable: ties go to the earliest member
    return (groups[0][0] if groups else 0), groups


class VoteSystem:
    name = "vote"

    def __init__(self, members: list[str | Path]):
        if len(members) < 2:
            raise ValueError("vote: give at least two member run directories (--members RUN RUN ...)")
        self.members = [Path(m) for m in members]
        self.configs, self.predictions = [], []
        for path in self.members:
            run = RunDir(path)
            if not run.config_path.is_file():
                raise FileNotFoundError(f"vote: {path} is not a run directory (no config.json)")
            self.configs.append(run.read_config())
            self.predictions.append(run.read_predictions())

    def predict(self, tasks: list[Task]) -> list[Prediction]:
        out = []
        for task in tasks:
            ex = task.example
            candidates = [preds.get(ex.index) for preds in self.predictions]
            sqls = [c["sql"] if c else "" for c in candidates]
            chosen, groups = execution_vote(sqls, task.db_path)
            base = candidates[chosen] or {}
            trace = [{"stage": f"member:{run.name}", "sql": sql, "raw_output": "",
                      "error": None if c else "no prediction in this run"}
                     for run, sql, c in zip(self.members, sqls, candidates)]
            trace.append({"stage": "vote", "sql": sqls[chosen], "raw_output": "", "error": None,
                          "groups": groups, "chosen": chosen})
            out.append(Prediction(
                index=ex.index, db_id=ex.db_id, sql=sqls[chosen], raw_output=base.get("raw_output", ""),
                prompt_tokens=sum(c.get("prompt_tokens", 0) for c in candidates if c),
                completion_tokens=sum(c.get("completion_tokens", 0) for c in candidates if c),
                latency_s=sum(c.get("latency_s", 0.0) for c in candidates if c),
                error=None if any(candidates) else "no member predicted this example",
                trace=trace,
            ))
        return out

    def config(self) -> dict:
        return {
            "system": "vote",
            "members": [{"run": str(run), "config_hash": cfg.get("config_hash"), "system": cfg.get("run", {}).get("system")}
                        for run, cfg in zip(self.members, self.configs)],
            "rule": "largest group of equal execution results; ties and all-failing go to the first member",
            "timeout_s": VOTE_TIMEOUT_S,
        }


def vote(members=None, dataset_name=None) -> VoteSystem:
    return VoteSystem(members or [])
