"""The databases a server or the demo answers questions about: db_id -> schema, SQLite file, sample questions.

Databases come from named datasets (the demo data, Spider dev, ...) and from SQLite files a user
brings (opened read-only, introspected with `Schema.from_sqlite`). The first database of a name wins;
a later one with the same db_id is reported and skipped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from t2s_bench.datasets.schema import Schema

log = logging.getLogger(__name__)
SAMPLE_QUESTIONS = 5


@dataclass
class Database:
    db_id: str
    source: str  # dataset name, or "file"
    schema: Schema
    path: Path | None  # the SQLite file; None for a schema without data
    questions: list[str] = field(default_factory=list)  # sample questions from the dataset

    def summary(self) -> dict:
        return {"db_id": self.db_id, "source": self.source, "tables": [t.name for t in self.schema.tables],
                "executable": self.path is not None, "sample_questions": self.questions}


class DatabaseCatalog:
    def __init__(self) -> None:
        self._dbs: dict[str, Database] = {}

    @classmethod
    def from_sources(cls, datasets: list[str] | tuple[str, ...] = ("demo",), files: list[str | Path] = (),
                     optional: tuple[str, ...] = ()) -> DatabaseCatalog:
        """Databases of `datasets` and `files`; datasets in `optional` are skipped when absent (e.g. Spider)."""
        catalog = cls()
        for name in datasets:
            try:
                catalog.add_dataset(name)
            except FileNotFoundError as e:
                if name not in optional:
                    raise
                log.info("%s not available: %s", name, e)
        for path in files:
            catalog.add_file(path)
        return catalog

    def add_dataset(self, name: str) -> list[str]:
        from t2s_bench.datasets import load_dataset

        dataset = load_dataset(name)
        questions: dict[str, list[str]] = {}
        for ex in dataset.examples:
            bucket = questions.setdefault(ex.db_id, [])
            if len(bucket) < SAMPLE_QUESTIONS and ex.question not in bucket:
                bucket.append(ex.question)
        added = []
        for db_id in sorted(set(dataset.schemas) | set(questions)):
            path = dataset.db_path(db_id)
            if path is None:
                continue  # a schema without its database cannot be executed on: not served
            if self._add(Database(db_id, dataset.name, dataset.schema(db_id), path, questions.get(db_id, []))):
                added.append(db_id)
        return added

    def add_file(self, path: str | Path, db_id: str | None = None) -> Database:
        """A user's SQLite file (read-only); raises ValueError when it is not a SQLite database."""
        import sqlite3

        path = Path(path).resolve()
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist")
        try:
            schema = Schema.from_sqlite(path, db_id or path.stem)
        except sqlite3.DatabaseError as e:
            raise ValueError(f"{path.name} is not a SQLite database: {e}") from e
        db = Database(schema.db_id, "file", schema, path)
        if not self._add(db):
            raise ValueError(f"a database named {db.db_id!r} is already served")
        return db

    def _add(self, db: Database) -> bool:
        if db.db_id in self._dbs:
            log.warning("database %s from %s skipped: %s already serves one of that name",
                        db.db_id, db.source, self._dbs[db.db_id].source)
            return False
        self._dbs[db.db_id] = db
        return True

    def get(self, db_id: str) -> Database:
        try:
            return self._dbs[db_id]
        except KeyError:
            raise KeyError(f"unknown db_id {db_id!r}") from None

    def __contains__(self, db_id: str) -> bool:
        return db_id in self._dbs

    def __len__(self) -> int:
        return len(self._dbs)

    def all(self) -> list[Database]:
        return list(self._dbs.values())
