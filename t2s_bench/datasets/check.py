"""Health check of a Spider-format dataset: gold queries run, databases present, splits disjoint."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from t2s_bench.datasets.spider import Dataset


@dataclass
class GoldFailure:
    index: int
    db_id: str
    query: str
    error: str
    timed_out: bool


@dataclass
class CheckReport:
    dataset: str
    n_examples: int
    n_databases: int  # distinct db_ids used by the examples
    n_executed: int  # examples whose database is present (their gold query was run)
    missing_databases: dict[str, int]  # db_id -> examples skipped with reason "missing database"
    failures: list[GoldFailure]  # gold queries that fail or time out
    n_empty_results: int  # gold queries that run but return no rows (not an error: reported)
    missing_schemas: list[str]  # db_ids with neither a tables.json entry nor a SQLite file
    against: str | None = None
    shared_databases: list[str] = field(default_factory=list)  # db_ids used by both datasets
    same_schema_pairs: list[tuple[str, str]] = field(default_factory=list)  # identical schemas, other names

    @property
    def n_missing_examples(self) -> int:
        return sum(self.missing_databases.values())

    @property
    def ok(self) -> bool:
        """No failing gold query, no shared database; and something was checked at all."""
        checked = self.n_executed > 0 or self.n_examples == 0
        return checked and not self.failures and not self.shared_databases and not self.same_schema_pairs

    def to_json(self) -> dict:
        out = asdict(self)
        out["n_missing_examples"] = self.n_missing_examples
        out["n_failures"] = len(self.failures)
        out["ok"] = self.ok
        return out

    def to_text(self) -> str:
        lines = [
            f"dataset {self.dataset}: {self.n_examples} examples over {self.n_databases} databases",
            f"  gold queries executed: {self.n_executed}; failing: {len(self.failures)}; "
            f"returning no rows: {self.n_empty_results}",
        ]
        if self.missing_databases:
            listed = ", ".join(f"{db} ({n})" for db, n in sorted(self.missing_databases.items()))
            lines.append(f"  skipped, missing database: {self.n_missing_examples} examples: {listed}")
        else:
            lines.append("  every database is present")
        if self.missing_schemas:
            lines.append(f"  no schema (no tables.json entry, no SQLite file): {', '.join(self.missing_schemas)}")
        for f in self.failures:
            kind = "timed out" if f.timed_out else "error"
            lines.append(f"  FAIL #{f.index} [{f.db_id}] {kind}: {f.error}\n      {f.query}")
        if self.against is not None:
            if self.shared_databases or self.same_schema_pairs:
                lines.append(f"  NOT disjoint from {self.against}: shared databases {self.shared_databases}"
                             + (f", identical schemas {self.same_schema_pairs}" if self.same_schema_pairs else ""))
            else:
                lines.append(f"  disjoint from {self.against}: no database in common")
        if self.n_executed == 0 and self.n_examples:
            lines.append("  no gold query could be executed: every database is missing")
        lines.append("  OK" if self.ok else "  PROBLEMS FOUND")
        return "\n".join(lines)


def _schema_fingerprint(dataset: Dataset, db_id: str) -> frozenset | None:
    try:
        schema = dataset.schema(db_id)
    except KeyError:
        return None
    return frozenset((t.name.lower(), c.name.lower()) for t in schema.tables for c in t.columns)


def database_overlap(a: Dataset, b: Dataset) -> tuple[list[str], list[tuple[str, str]]]:
    """db_ids used by both datasets, and pairs of differently named databases with identical schemas."""
    dbs_a = sorted({e.db_id for e in a.examples})
    dbs_b = sorted({e.db_id for e in b.examples})
    shared = sorted(set(dbs_a) & set(dbs_b))
    prints_b: dict[frozenset, str] = {}
    for db in dbs_b:
        fp = _schema_fingerprint(b, db)
        if fp:
            prints_b.setdefault(fp, db)
    same = []
    for db in dbs_a:
        fp = _schema_fingerprint(a, db)
        other = prints_b.get(fp) if fp else None
        if other is not None and other != db:
            same.append((db, other))
    return shared, same


def check_dataset(
    dataset: Dataset, workers: int = 2, *, against: Dataset | None = None, timeout: float = 30.0
) -> CheckReport:
    """Run every gold query whose database is present; list missing databases; compare with `against`."""
    from t2s_bench.execution import execute_many

    runnable = [e for e in dataset.examples if dataset.db_path(e.db_id) is not None]
    results = execute_many(
        [(dataset.db_path(e.db_id), e.query) for e in runnable], workers=workers, timeout=timeout
    )
    failures, empty = [], 0
    for ex, res in zip(runnable, results):
        if res.error is not None or res.timed_out or res.rows is None:
            failures.append(GoldFailure(ex.index, ex.db_id, ex.query, res.error or "timed out", res.timed_out))
        elif not res.rows:
            empty += 1
    db_ids = sorted({e.db_id for e in dataset.examples})
    missing_schemas = [db for db in db_ids if db not in dataset.schemas and dataset.db_path(db) is None]
    report = CheckReport(
        dataset=dataset.name,
        n_examples=len(dataset),
        n_databases=len(db_ids),
        n_executed=len(runnable),
        missing_databases=dataset.missing_databases(),
        failures=failures,
        n_empty_results=empty,
        missing_schemas=missing_schemas,
    )
    if against is not None:
        report.against = against.name
        report.shared_databases, report.same_schema_pairs = database_overlap(dataset, against)
    return report


def write_report(report: CheckReport, path) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(report.to_json(), f, indent=2)
