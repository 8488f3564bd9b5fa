"""Build the demo databases from their SQL scripts into the cache, as a complete Spider-format folder.

Layout: cache_dir()/demo/<content hash>/{dev.json, tables.json, database/<db>/<db>.sqlite}.
The hash covers the scripts and the questions, so editing either builds a fresh folder.
A folder is built under a temporary name and renamed into place, so a half-built one is never used.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import tempfile
from pathlib import Path

from t2s_bench import paths
from t2s_bench.datasets.schema import Schema
from t2s_bench.datasets.spider import Dataset, load_spider_format

SOURCE_DIR = Path(__file__).resolve().parent
DEMO_DBS = ("school", "store", "flights")
QUESTIONS_FILE = "questions.json"


def _content_hash() -> str:
    h = hashlib.sha256()
    for name in [f"{db}.sql" for db in DEMO_DBS] + [QUESTIONS_FILE]:
        h.update(name.encode())
        h.update((SOURCE_DIR / name).read_bytes())
    return h.hexdigest()[:16]


def _build_into(folder: Path) -> None:
    tables = []
    for db in DEMO_DBS:
        db_folder = folder / "database" / db
        db_folder.mkdir(parents=True)
        script = (SOURCE_DIR / f"{db}.sql").read_text(encoding="utf-8")
        db_file = db_folder / f"{db}.sqlite"
        con = sqlite3.connect(db_file)
        try:
            con.executescript(script)
            con.commit()
        finally:
            con.close()
        shutil.copyfile(SOURCE_DIR / f"{db}.sql", db_folder / "schema.sql")
        tables.append(Schema.from_sqlite(db_file, db).to_tables_json())
    (folder / "tables.json").write_text(json.dumps(tables, indent=1), encoding="utf-8")
    shutil.copyfile(SOURCE_DIR / QUESTIONS_FILE, folder / "dev.json")


def build_demo(root: Path | None = None) -> Path:
    """Return the built demo folder, building it once (atomically) if needed."""
    base = (root or paths.cache_dir()) / "demo"
    target = base / _content_hash()
    if (target / "tables.json").is_file():
        return target
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=base))
    try:
        _build_into(tmp)
        try:
            os.rename(tmp, target)
        except OSError:
            # another process finished first: keep its folder if it is complete
            if not (target / "tables.json").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def load_demo(root: Path | None = None) -> Dataset:
    """The demo dataset: 3 databases (school, store, flights), 48 questions across all hardness levels."""
    folder = build_demo(root)
    return load_spider_format(folder / "dev.json", folder / "tables.json", folder / "database", "demo")
