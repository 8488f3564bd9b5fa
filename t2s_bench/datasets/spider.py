"""Spider-format loading: questions JSON, tables.json, database folder, official gold files."""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from t2s_bench.datasets.schema import Schema

log = logging.getLogger(__name__)


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
            try:
                self.schemas[db_id] = Schema.from_sqlite(path, db_id)
            except sqlite3.DatabaseError as e:  # e.g. "file is not a database"
                raise KeyError(f"no schema for database {db_id!r} (not in tables.json; {path}: {e})") from e
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


def read_json(path: str | Path):
    """Parse a JSON file; a bad file raises ValueError naming the file, line and column."""
    data = Path(path).read_bytes()
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ValueError(f"{path}:{line}: not UTF-8 text (byte 0x{data[e.start]:02x})") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{e.lineno}: not valid JSON ({e.msg}, column {e.colno})") from None


def load_tables(path: str | Path) -> dict[str, Schema]:
    entries = read_json(path)
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected a JSON list of database schemas (Spider's tables.json)")
    schemas = {}
    for i, entry in enumerate(entries):
        try:
            schemas[entry["db_id"]] = Schema.from_tables_json(entry)
        except (KeyError, IndexError, TypeError, ValueError) as e:
            name = entry.get("db_id", "?") if isinstance(entry, dict) else "?"
            raise ValueError(f"{path}: schema {i} (db_id {name!r}) is malformed: {type(e).__name__}: {e}") from None
    return schemas


def load_questions(path: str | Path) -> list[Example]:
    """A Spider questions file: a JSON list of records with db_id, question and query (or SQL)."""
    records = read_json(path)
    if not isinstance(records, list):
        raise ValueError(f"{path}: expected a JSON list of examples")
    out = []
    for i, r in enumerate(records):
        if not isinstance(r, dict):
            raise ValueError(f"{path}: example {i} is a JSON {type(r).__name__}, not an object")
        missing = [k for k in ("db_id", "question") if k not in r]
        query = r.get("query", r.get("SQL"))
        if missing or query is None:
            raise ValueError(f"{path}: example {i} lacks {missing or ['query']}")
        extra = {k: v for k, v in r.items() if k not in ("db_id", "question", "query", "SQL")}
        out.append(Example(i, r["db_id"], r["question"], query, extra))
    return out


def _numbered_lines(path: str | Path, *, strict: bool):
    """(line number, text) per line. Bytes that are not UTF-8 raise ValueError naming the line
    (``strict``) or are replaced with U+FFFD, with a warning naming the line."""
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            try:
                yield n, raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as e:
                where = f"{path}:{n}: not UTF-8 text (byte 0x{raw[e.start]:02x} at column {e.start + 1})"
                if strict:
                    raise ValueError(where) from None
                log.warning("%s; the bad bytes are replaced with U+FFFD and the line is scored as it is", where)
                yield n, raw.decode("utf-8", errors="replace").rstrip("\r\n")


def load_gold_file(path: str | Path) -> list[tuple[str, str]]:
    """The official gold format: one `SQL<TAB>db_id` per line."""
    out = []
    for n, line in _numbered_lines(path, strict=True):
        if not line.strip():
            continue
        if "\t" not in line:
            raise ValueError(f"{path}:{n}: expected 'SQL<TAB>db_id'")
        sql, db_id = line.rsplit("\t", 1)
        out.append((sql.strip(), db_id.strip()))
    return out


def load_pred_file(path: str | Path) -> list[str]:
    """The official prediction format: one SQL per line, aligned with the gold file (a blank line
    is an empty prediction). Bytes that are not UTF-8 are replaced, with a warning naming the line."""
    return [line.split("\t")[0].strip() for _, line in _numbered_lines(path, strict=False)]


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
