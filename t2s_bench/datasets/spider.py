"""Spider-format loading: questions JSON, tables.json, database folder, official gold files."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from t2s_bench.datasets.schema import Schema


@dataclass
class Example:
    index: int  # position in the source file; the stable key of an example
    db_id: str
    question: str
    query: str  # gold SQL
    extra: dict = field(default_factory=dict)  # every other field of the source record


@dataclass
class Dataset:
    name: str
    examples: list[Example]
    schemas: dict[str, Schema]
    db_dir: Path

    def db_path(self, db_id: str) -> Path | None:
        """The SQLite file of a database, or None when it is absent (reported as skipped)."""
        path = self.db_dir / db_id / f"{db_id}.sqlite"
        return path if path.is_file() else None

    def schema(self, db_id: str) -> Schema:
        if db_id not in self.schemas:
            path = self.db_path(db_id)
            if path is None:
                raise KeyError(f"no schema for database {db_id!r} (not in tables.json, no SQLite file)")
            self.schemas[db_id] = Schema.from_sqlite(path, db_id)
        return self.schemas[db_id]

    def missing_databases(self) -> dict[str, int]:
        """db_id -> number of examples whose database file is absent."""
        out: dict[str, int] = {}
        for ex in self.examples:
            if self.db_path(ex.db_id) is None:
                out[ex.db_id] = out.get(ex.db_id, 0) + 1
        return out

    def filter(self, *, db_ids=None, indices=None, limit: int | None = None) -> Dataset:
        keep = self.examples
        if db_ids:
            keep = [e for e in keep if e.db_id in set(db_ids)]
        if indices is not None:
            wanted = set(indices)
            keep = [e for e in keep if e.index in wanted]
        if limit is not None:
            keep = keep[:limit]
        return Dataset(self.name, keep, self.schemas, self.db_dir)

    def __len__(self) -> int:
        return len(self.examples)


def load_tables(path: str | Path) -> dict[str, Schema]:
    with open(path, encoding="utf-8") as f:
        entries = json.load(f)
    return {e["db_id"]: Schema.from_tables_json(e) for e in entries}


def load_questions(path: str | Path) -> list[Example]:
    """A Spider questions file: a JSON list of records with db_id, question and query (or SQL)."""
    with open(path, encoding="utf-8") as f:
        records = json.load(f)
    if not isinstance(records, list):
        raise ValueError(f"{path}: expected a JSON list of examples")
    out = []
    for i, r in enumerate(records):
        missing = [k for k in ("db_id", "question") if k not in r]
        query = r.get("query", r.get("SQL"))
        if missing or query is None:
            raise ValueError(f"{path}: example {i} lacks {missing or ['query']}")
        extra = {k: v for k, v in r.items() if k not in ("db_id", "question", "query", "SQL")}
        out.append(Example(i, r["db_id"], r["question"], query, extra))
    return out


def load_gold_file(path: str | Path) -> list[tuple[str, str]]:
    """The official gold format: one `SQL<TAB>db_id` per line."""
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            if "\t" not in line:
                raise ValueError(f"{path}:{n}: expected 'SQL<TAB>db_id'")
            sql, db_id = line.rsplit("\t", 1)
            out.append((sql.strip(), db_id.strip()))
    return out


def load_pred_file(path: str | Path) -> list[str]:
    """The official prediction format: one SQL per line, aligned with the gold file."""
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n").split("\t")[0].strip() for line in f]


def load_spider_format(
    questions: str | Path, tables: str | Path | None, db_dir: str | Path, name: str | None = None
) -> Dataset:
    """Load any Spider-format dataset; without tables.json, schemas are introspected from SQLite."""
    examples = load_questions(questions)
    schemas = load_tables(tables) if tables else {}
    return Dataset(name or Path(questions).stem, examples, schemas, Path(db_dir))


def dataset_from_gold_file(gold: str | Path, tables: str | Path | None, db_dir: str | Path) -> Dataset:
    pairs = load_gold_file(gold)
    examples = [Example(i, db, "", sql) for i, (sql, db) in enumerate(pairs)]
    schemas = load_tables(tables) if tables else {}
    return Dataset(Path(gold).stem, examples, schemas, Path(db_dir))
