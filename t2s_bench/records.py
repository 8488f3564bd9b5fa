"""The records that flow through a run, one home for each:

    Task (question + schema)  ──system──►  Prediction  ──scorer──►  ScoreRecord

`Prediction` is one line of a run's `predictions.jsonl`; `ScoreRecord` one line of `scores.jsonl`.
Score records stay plain dicts on disk and in memory (JSON in, JSON out, a pandas row in reports);
`ScoreRecord` types them, and `new_score_record` is the one place their fields are listed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, TypedDict

from t2s_bench.datasets.schema import Schema
from t2s_bench.datasets.spider import Example


@dataclass
class Task:
    example: Example
    schema: Schema
    db_path: Path | None


@dataclass
class Prediction:
    index: int
    db_id: str
    sql: str  # final SQL, extracted from the raw output
    raw_output: str = ""
    prompt: list[dict] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    error: str | None = None  # e.g. prompt overflow, backend failure
    trace: list[dict] = field(default_factory=list)  # earlier generations: zero-shot draft, repaired answers

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Prediction:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


class ResultPreview(TypedDict):
    columns: list[str]
    rows: list[list[Any]]
    n_rows: int


class ScoreRecord(TypedDict, total=False):
    """One scored example. Metrics registered in `t2s_bench.scoring.metrics` add their own keys."""

    index: int
    db_id: str
    question: str
    gold: str
    pred: str
    hardness: str | None  # easy | medium | hard | extra; None when the gold cannot be parsed
    exec_match: bool | None  # None when skipped
    exact_match: bool | None  # corrected exact-set match; None when the gold is outside Spider's grammar
    pred_error: str | None
    timed_out: bool
    skipped: str | None  # reason, e.g. "missing database"
    error_class: str | None  # None when correct
    error_reason: str
    gold_result: ResultPreview | None
    pred_result: ResultPreview | None


def new_score_record(index: int, db_id: str, question: str, gold: str, pred: str) -> ScoreRecord:
    """A record before scoring: every field present, verdicts unknown."""
    return ScoreRecord(
        index=index, db_id=db_id, question=question, gold=gold, pred=pred,
        hardness=None, exec_match=None, exact_match=None, pred_error=None, timed_out=False,
        skipped=None, error_class=None, error_reason="", gold_result=None, pred_result=None,
    )


RECORD_FIELDS: list[str] = list(ScoreRecord.__annotations__)
