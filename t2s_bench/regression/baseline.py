"""Per-question verdicts of a run, the compact baseline file that keeps them in git, and the paired
comparison of a run with a baseline.

A baseline file (`t2s-bench baseline save RUN --out FILE`) is JSON with one line per question:

    {
     "format": "t2s-bench-baseline", "version": 1,
     "run": "demo-zero-shot-1a2b3c4d", "system": "zero-shot", "config_hash": "…",
     "dataset": "demo", "selection": {"limit": null, "sample": 24, "sample_seed": 0, …},
     "summary": {"n": 24, "exec": 0.625, "exact": 0.458},
     "columns": ["exec", "exact", "error_class", "gold_sha"],
     "questions": {
      "0": [1, 1, null, "3f2a9c01"],
      "5": [0, 0, "wrong_filter", "77b0e1d4"],
      …
     }
    }

`exec`/`exact` are 1, 0 or null (not scored); `gold_sha` is a short hash of the gold SQL, so a
comparison notices when the dataset changed under a baseline. `--with-sql` adds a `sql` column with
the baseline's predicted SQL (shown next to the new SQL when a question flips). Files carry no
timestamp: saving the same run twice gives the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT = "t2s-bench-baseline"
VERSION = 1
COLUMNS = ["exec", "exact", "error_class", "gold_sha"]
METRIC_FIELDS = {"exec": "exec_match", "exact": "exact_match"}
METRIC_NAMES = {"exec": "EX", "exact": "EM"}


@dataclass
class Question:
    """One question's verdicts; the texts are known when the verdicts come from a run directory."""

    index: int
    exec: bool | None
    exact: bool | None
    error_class: str | None
    gold_sha: str
    sql: str | None = None  # predicted SQL
    gold: str | None = None
    question: str | None = None
    db_id: str | None = None
    error_reason: str | None = None

    def verdict(self, metric: str) -> bool | None:
        if metric not in METRIC_FIELDS:
            raise ValueError(f"unknown metric {metric!r}: use one of {', '.join(METRIC_FIELDS)}")
        return self.exec if metric == "exec" else self.exact


@dataclass
class Verdicts:
    """Per-question verdicts of a run directory or of a baseline file."""

    name: str
    source: Path
    system: str
    dataset: str
    selection: dict
    config_hash: str | None
    questions: dict[int, Question] = field(repr=False)
    run_path: Path | None = None  # set when loaded from a run directory
    has_sql: bool = False

    @classmethod
    def from_run(cls, run: Any) -> Verdicts:
        """From a RunResult (or a run directory path)."""
        from t2s_bench.api import RunResult, load_run

        result = run if isinstance(run, RunResult) else load_run(run)
        questions = {}
        for rec in result.records.to_dict("records"):
            questions[int(rec["index"])] = Question(
                index=int(rec["index"]), exec=_opt_bool(rec.get("exec_match")), exact=_opt_bool(rec.get("exact_match")),
                error_class=_opt_str(rec.get("error_class")), gold_sha=gold_sha(rec.get("gold") or ""),
                sql=rec.get("pred") or "", gold=rec.get("gold"), question=rec.get("question"), db_id=rec.get("db_id"),
                error_reason=_opt_str(rec.get("error_reason")),
            )
        dataset = result.config.get("dataset", {})
        return cls(
            name=result.name, source=result.path, system=str(result.system),
            dataset=str(dataset.get("name") if isinstance(dataset, dict) else dataset),
            selection=result.config.get("selection") or {}, config_hash=result.config.get("config_hash"),
            questions=questions, run_path=result.path, has_sql=True,
        )

    def accuracy(self, metric: str = "exec") -> float | None:
        values = [q.verdict(metric) for q in self.questions.values() if q.verdict(metric) is not None]
        return sum(values) / len(values) if values else None

    # ------------------------------------------------------------ the file
    def to_text(self, *, with_sql: bool = False) -> str:
        """The baseline file's text: a JSON header, then one line per question (small git diffs)."""
        columns = COLUMNS + (["sql"] if with_sql else [])
        header = {
            "format": FORMAT, "version": VERSION, "run": self.name, "system": self.system,
            "config_hash": self.config_hash, "dataset": self.dataset, "selection": self.selection,
            "summary": {"n": len(self.questions), "exec": _round(self.accuracy("exec")),
                        "exact": _round(self.accuracy("exact"))},
            "columns": columns,
        }
        rows = []
        for i in sorted(self.questions):
            q = self.questions[i]
            row: list[Any] = [_as_int(q.exec), _as_int(q.exact), q.error_class, q.gold_sha]
            if with_sql:
                row.append(q.sql or "")
            rows.append(f"  {json.dumps(str(i))}: {json.dumps(row, ensure_ascii=False)}")
        head = json.dumps(header, indent=1, ensure_ascii=False)
        return head[: head.rstrip().rfind("}")].rstrip() + ',\n "questions": {\n' + ",\n".join(rows) + "\n }\n}\n"

    def save(self, path: str | Path, *, with_sql: bool = False) -> Path:
        from t2s_bench.files import atomic_write_text

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, self.to_text(with_sql=with_sql))
        return path


def save_baseline(run: Any, path: str | Path, *, with_sql: bool = False) -> Path:
    """Write the compact baseline file of a run (a RunResult or a run directory)."""
    return Verdicts.from_run(run).save(path, with_sql=with_sql)


def load_verdicts(source: Any) -> Verdicts:
    """Verdicts from a RunResult, a Verdicts, a run directory or a baseline file."""
    from t2s_bench.api import RunResult

    if isinstance(source, Verdicts):
        return source
    if isinstance(source, RunResult):
        return Verdicts.from_run(source)
    path = Path(source)
    if path.is_dir():
        return Verdicts.from_run(path)
    if not path.is_file():
        raise FileNotFoundError(f"baseline {path} not found (a run directory or a file from `t2s-bench baseline save`)")
    return _read_file(path)


def _read_file(path: Path) -> Verdicts:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not a baseline file (invalid JSON at line {e.lineno}: {e.msg})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path}: not a baseline file (no \"format\": \"{FORMAT}\"); write one with "
                         "`t2s-bench baseline save RUN --out FILE`")
    if data.get("version") != VERSION:
        raise ValueError(f"{path}: baseline format version {data.get('version')} is not supported (expected {VERSION})")
    columns = data.get("columns") or COLUMNS
    missing = [c for c in COLUMNS if c not in columns]
    if missing:
        raise ValueError(f"{path}: the columns {', '.join(missing)} are missing")
    at = {c: columns.index(c) for c in columns}
    questions = {}
    for key, row in (data.get("questions") or {}).items():
        if not isinstance(row, list) or len(row) != len(columns):
            raise ValueError(f"{path}: question {key}: expected {len(columns)} values ({', '.join(columns)}), got {row!r}")
        questions[int(key)] = Question(
            index=int(key), exec=_opt_bool(row[at["exec"]]), exact=_opt_bool(row[at["exact"]]),
            error_class=row[at["error_class"]], gold_sha=str(row[at["gold_sha"]]),
            sql=row[at["sql"]] if "sql" in at else None,
        )
    return Verdicts(name=str(data.get("run") or path.stem), source=path, system=str(data.get("system") or "?"),
                    dataset=str(data.get("dataset")), selection=data.get("selection") or {},
                    config_hash=data.get("config_hash"), questions=questions, has_sql="sql" in at)


# ---------------------------------------------------------------- comparison


@dataclass
class Flip:
    """A question whose verdict differs between the baseline and the run."""

    index: int
    run: Question
    baseline: Question


@dataclass
class Comparison:
    """A run against a baseline on the questions both scored (paired)."""

    metric: str
    run: Verdicts
    baseline: Verdicts
    n: int  # paired questions
    baseline_accuracy: float
    accuracy: float
    difference: float  # run - baseline, a fraction
    low: float  # 95% paired bootstrap interval of the difference
    high: float
    p_value: float  # McNemar's exact test, two-sided
    regressed: list[Flip]  # right in the baseline, wrong now
    improved: list[Flip]  # wrong in the baseline, right now
    n_only_run: int  # questions the baseline does not have (not compared)
    n_only_baseline: int

    @property
    def drop(self) -> float:
        return -self.difference

    def failures(self, *, alpha: float = 0.05, max_drop: float | None = None) -> list[str]:
        """Why this comparison is a regression: a significant drop, or one larger than max_drop."""
        out = []
        if self.difference < 0 and self.p_value < alpha:
            out.append(f"significant drop: McNemar exact p = {self.p_value:.4g} < alpha {alpha:g}")
        if max_drop is not None and self.drop > max_drop + 1e-12:
            out.append(f"drop of {100 * self.drop:.1f} points > max_drop {100 * max_drop:.1f} points")
        return out

    def summary(self) -> str:
        name = METRIC_NAMES.get(self.metric, self.metric)
        sign = "+" if self.difference >= 0 else "−"
        text = (f"{name} {100 * self.baseline_accuracy:.1f}% → {100 * self.accuracy:.1f}% "
                f"({sign}{abs(100 * self.difference):.1f} points, 95% CI [{100 * self.low:+.1f}, {100 * self.high:+.1f}]) "
                f"on {self.n} paired questions; McNemar exact p = {self.p_value:.4g}; "
                f"{len(self.regressed)} right→wrong, {len(self.improved)} wrong→right")
        if self.n_only_run or self.n_only_baseline:
            text += f" ({self.n_only_run} questions only in the run, {self.n_only_baseline} only in the baseline: not compared)"
        return text

    def describe_flips(self, limit: int = 10) -> str:
        """The questions that went right→wrong: question, gold SQL, both predicted SQLs, error class."""
        lines = []
        for flip in self.regressed[:limit]:
            q, b = flip.run, flip.baseline
            head = f"  #{flip.index}"
            if q.db_id:
                head += f" [{q.db_id}]"
            if q.question:
                head += f" {q.question}"
            lines.append(head)
            if q.gold:
                lines.append(f"      gold:     {_one_line(q.gold)}")
            if b.sql is not None:
                lines.append(f"      baseline: {_one_line(b.sql)}")
            lines.append(f"      now:      {_one_line(q.sql or '') if q.sql is not None else '(not recorded)'}")
            reason = f" ({_one_line(q.error_reason, 160)})" if q.error_reason else ""
            lines.append(f"      error:    {q.error_class or 'unclassified'}{reason}")
        if len(self.regressed) > limit:
            lines.append(f"  … and {len(self.regressed) - limit} more: {', '.join(f'#{f.index}' for f in self.regressed[limit:])}")
        return "\n".join(lines)


def compare_verdicts(run: Verdicts, baseline: Verdicts, *, metric: str = "exec") -> Comparison:
    """Paired comparison on the questions both scored (McNemar exact, as the reports use)."""
    from t2s_bench.reporting.statistics import compare_paired

    if metric not in METRIC_FIELDS:
        raise ValueError(f"unknown metric {metric!r}: use one of {', '.join(METRIC_FIELDS)}")
    if run.dataset != baseline.dataset:
        raise ValueError(f"the baseline {baseline.source} is on dataset {baseline.dataset!r}, the run {run.source} "
                         f"on {run.dataset!r}: nothing to compare")
    common = sorted(run.questions.keys() & baseline.questions.keys())
    changed = [i for i in common if run.questions[i].gold_sha != baseline.questions[i].gold_sha]
    if changed:
        shown = ", ".join(f"#{i}" for i in changed[:8]) + (" …" if len(changed) > 8 else "")
        raise ValueError(f"the gold SQL of {len(changed)} questions ({shown}) differs between the baseline "
                         f"{baseline.source} and the run: the dataset changed; save the baseline again")
    pairs = [(i, baseline.questions[i].verdict(metric), run.questions[i].verdict(metric)) for i in common]
    pairs = [(i, a, b) for i, a, b in pairs if a is not None and b is not None]
    if not pairs:
        raise ValueError(f"the run {run.source} and the baseline {baseline.source} have no scored question in common")
    stats = compare_paired([a for _, a, _ in pairs], [b for _, _, b in pairs])
    regressed = [Flip(i, run.questions[i], baseline.questions[i]) for i, a, b in pairs if a and not b]
    improved = [Flip(i, run.questions[i], baseline.questions[i]) for i, a, b in pairs if b and not a]
    return Comparison(
        metric=metric, run=run, baseline=baseline, n=stats.n, baseline_accuracy=stats.baseline_accuracy,
        accuracy=stats.system_accuracy, difference=stats.difference, low=stats.low, high=stats.high,
        p_value=stats.p_value, regressed=regressed, improved=improved,
        n_only_run=len(run.questions.keys() - baseline.questions.keys()),
        n_only_baseline=len(baseline.questions.keys() - run.questions.keys()),
    )


# ---------------------------------------------------------------- helpers


def gold_sha(sql: str) -> str:
    """Short hash of a gold SQL, whitespace-insensitive."""
    return hashlib.sha256(" ".join(sql.split()).encode()).hexdigest()[:8]


def _opt_bool(value: Any) -> bool | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return bool(value)


def _opt_str(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
        return None
    return str(value)


def _as_int(value: bool | None) -> int | None:
    return None if value is None else int(value)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _one_line(text: str, width: int = 200) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
