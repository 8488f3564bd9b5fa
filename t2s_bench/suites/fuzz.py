"""Neighbour databases: the original's schema, filled with a few random rows per table.

Each generated database has the original's tables and views (its own CREATE statements, so
declared types, primary keys and constraints are the same) and a handful of rows per table:

- values come from three pools per column: values of the original column, the literals that
  gold queries compare the column with (and their neighbours: n-1, n+1, a string containing a
  LIKE pattern's text), and fresh values of the column's kind (numbers around its range, short
  random words); NULLs only where the original column has NULLs, at about its rate;
- primary keys stay unique (single and composite);
- foreign keys keep their integrity: tables are filled parents first, and a foreign-key column
  takes its values from the rows just generated for the referenced column (a self-reference, or
  the edge that closes a cycle, takes values of the original column instead).

The pools and the structure are read once per database (`Fuzzer`); `Fuzzer.write(path, rng)`
then writes one neighbour. This is written by hand because no maintained library generates
SQLite rows under a live schema's keys (the test-suite paper's generator is research code).
"""

from __future__ import annotations

import random
import sqlite3
import string
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sqlglot import exp

from t2s_bench.datasets.schema import Schema
from t2s_bench.sql.parse import SQLParseError, parse_sql
from t2s_bench.suites.mutants import owning_table

ORIGINAL_SAMPLE = 200  # distinct values read from each original column
MIN_ROWS, MAX_ROWS = 2, 10  # rows per generated table
DRAW_ATTEMPTS = 20  # tries for a value that keeps a key unique
NARROW_RATE = 0.5  # share of neighbours where columns repeat a few values
FOCUS_RATE = 0.7  # how often a focused column takes one of the focus query's values


@dataclass
class ColumnPool:
    original: list = field(default_factory=list)
    literals: list = field(default_factory=list)
    null_rate: float = 0.0
    unique: bool = False  # at least two rows, no NULL, no value twice in the original
    numeric: bool = False
    integer: bool = False
    low: float = 0.0
    high: float = 0.0


@dataclass
class TablePlan:
    name: str
    columns: list[str]
    key: list[int]  # positions of the primary-key columns
    parents: dict[int, tuple[str, str]]  # column position -> (referenced table, column), lower case
    unique: list[int] = field(default_factory=list)  # other columns kept duplicate-free (keep_unique)


class Fuzzer:
    """Reads a database's structure and value pools once; writes neighbour databases."""

    def __init__(self, db_path: str | Path, gold_queries: Iterable[str], *, keep_unique: bool = False):
        """`keep_unique`: a column whose values are all distinct in the original (a name, a code) stays
        duplicate-free, as if it were declared UNIQUE (by default only declared keys are)."""
        self.db_path = Path(db_path)
        self.keep_unique = keep_unique
        self.schema = Schema.from_sqlite(self.db_path)
        con = sqlite3.connect(f"file:{self.db_path.resolve()}?mode=ro", uri=True)
        con.text_factory = lambda b: b.decode("utf-8", errors="replace")
        try:
            self.ddl = [sql for (sql,) in con.execute(
                "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' "
                "AND type IN ('table', 'view') ORDER BY type = 'view', rowid")]
            self.pools = {(t.name.lower(), c.name.lower()): _read_pool(con, t.name, c.name)
                          for t in self.schema.tables for c in t.columns}
        finally:
            con.close()
        for key, values in self.literal_pools(gold_queries).items():
            self.pools[key].literals = values
        self.plans = _table_order(self.schema)
        if keep_unique:
            for plan in self.plans:
                plan.unique = [i for i, c in enumerate(plan.columns)
                               if self.pools[(plan.name.lower(), c.lower())].unique and i not in plan.key]
        self._narrow: dict[tuple[str, str], list] = {}
        self._focus: dict[tuple[str, str], list] = {}

    def literal_pools(self, queries: Iterable[str]) -> dict[tuple[str, str], list]:
        """(table, column) -> the values the queries compare it with, and their neighbours; a value
        compared with one side of a foreign key goes to both sides."""
        literals = gold_literals(queries, self.schema)
        for fk in self.schema.foreign_keys:
            child, parent = (fk.table.lower(), fk.column.lower()), (fk.ref_table.lower(), fk.ref_column.lower())
            both = literals.get(child, set()) | literals.get(parent, set())
            if both:
                literals[child] = literals[parent] = both
        pools = {key: sorted({v for x in values for v in _neighbours(x)}, key=repr)
                 for key, values in literals.items() if key in self.pools}
        return {key: values for key, values in pools.items() if values}

    def write(self, out: str | Path, rng: random.Random, focus: dict[tuple[str, str], list] | None = None) -> None:
        """Write one neighbour database to `out` (replaced if present). `focus` (from `literal_pools`
        of one query) makes the columns that query compares take its values most of the time, so
        that its conditions hold together on some rows.

        In some neighbours (``NARROW_RATE``) about half the non-key columns take one to three values
        only: repeated values are what tell `>` from `>=`, `avg` from a value, grouping by a name from
        grouping by an id, or one join column from another."""
        self._narrow = {} if rng.random() >= NARROW_RATE else {
            key: rng.sample(values, min(len(values), rng.randint(1, 3)))
            for key, pool in self.pools.items() if (values := pool.literals + pool.original) and rng.random() < 0.5}
        self._focus = focus or {}
        out = Path(out)
        out.unlink(missing_ok=True)
        con = sqlite3.connect(out, isolation_level=None)
        try:
            con.execute("PRAGMA journal_mode = OFF")  # a scratch file until distillation keeps it: no journal, no fsync
            con.execute("PRAGMA synchronous = OFF")
            con.execute("BEGIN")
            for sql in self.ddl:
                con.execute(sql)
            generated: dict[tuple[str, str], list] = {}
            for plan in self.plans:
                rows = self._rows(plan, rng, generated)
                marks = ", ".join("?" * len(plan.columns))
                names = ", ".join(f'"{c}"' for c in plan.columns)
                kept = []
                for row in rows:
                    cur = con.execute(f'INSERT OR IGNORE INTO "{plan.name}" ({names}) VALUES ({marks})', row)
                    if cur.rowcount:
                        kept.append(row)
                for i, c in enumerate(plan.columns):
                    generated[(plan.name.lower(), c.lower())] = [r[i] for r in kept if r[i] is not None]
            con.execute("COMMIT")
        finally:
            con.close()

    def _rows(self, plan: TablePlan, rng: random.Random, generated: dict) -> list[tuple]:
        n = rng.randint(MIN_ROWS, MAX_ROWS)
        keys: set[tuple] = set()
        used: dict[int, set] = {i: set() for i in plan.unique}
        rows = []
        for _ in range(n):
            for _attempt in range(DRAW_ATTEMPTS):
                row = tuple(self._value(plan, i, rng, generated) for i in range(len(plan.columns)))
                key = tuple(row[i] for i in plan.key)
                if plan.key and (None in key or key in keys) or any(row[i] in used[i] for i in plan.unique):
                    continue
                keys.add(key)
                for i in plan.unique:
                    used[i].add(row[i])
                rows.append(row)
                break
        return rows

    def _value(self, plan: TablePlan, i: int, rng: random.Random, generated: dict):
        parent = plan.parents.get(i)
        if parent is not None and generated.get(parent):
            return rng.choice(generated[parent])
        key = (plan.name.lower(), plan.columns[i].lower())
        pool = self.pools[key]
        if i not in plan.key and pool.null_rate and rng.random() < pool.null_rate:
            return None
        if key in self._focus and rng.random() < FOCUS_RATE:
            return rng.choice(self._focus[key])
        if i not in plan.key and i not in plan.unique and key in self._narrow:
            return rng.choice(self._narrow[key])
        source = rng.random()
        if pool.literals and source < 0.35:
            return rng.choice(pool.literals)
        if pool.original and source < 0.8:
            return rng.choice(pool.original)
        return _fresh(pool, rng)


def gold_literals(queries: Iterable[str], schema: Schema) -> dict[tuple[str, str], set]:
    """(table, column) in lower case -> the literal values gold queries compare that column with.
    Spider writes strings in double quotes, which SQLite reads as strings when no column has the
    name: such a quoted identifier counts as a string literal here too."""
    found: dict[tuple[str, str], set] = defaultdict(set)
    for sql in queries:
        try:
            tree = parse_sql(sql)
        except SQLParseError:
            continue
        for node in tree.find_all(exp.Binary, exp.In, exp.Between):
            sides = [node.this] + ([node.expression] if isinstance(node, exp.Binary) else [])
            sides += list(node.args.get("expressions") or []) + [node.args.get("low"), node.args.get("high")]
            sides = [s for s in sides if s is not None]
            columns = [s for s in sides if isinstance(s, exp.Column) and _is_column(s, tree, schema)]
            values = [v for s in sides if (v := _literal(s, tree, schema)) is not None]
            for col in columns:
                table = owning_table(col, tree, schema)
                if table is not None:
                    found[(table.name.lower(), col.name.lower())].update(values)
    return dict(found)


def _is_column(node: exp.Column, tree: exp.Expression, schema: Schema) -> bool:
    return owning_table(node, tree, schema) is not None


def _literal(node: exp.Expression, tree: exp.Expression, schema: Schema):
    if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal) and node.this.is_number:
        value = _literal(node.this, tree, schema)
        return -value if value is not None else None
    if isinstance(node, exp.Literal):
        if node.is_string:
            return node.this
        try:
            return int(node.this)
        except ValueError:
            try:
                return float(node.this)
            except ValueError:
                return None
    if (isinstance(node, exp.Column) and not node.table and isinstance(node.this, exp.Identifier)
            and node.this.quoted and not _is_column(node, tree, schema)):
        return node.name  # "double-quoted string"
    return None


def _neighbours(value) -> list:
    if isinstance(value, bool):
        return [value]
    if isinstance(value, int):
        return [value - 1, value, value + 1]
    if isinstance(value, float):
        return [value - 0.5, value, value + 0.5]
    if isinstance(value, str) and ("%" in value or "_" in value):
        core = value.replace("%", "").replace("_", "")
        return [core, f"x{core}", f"{core} y"] if core else []
    return [value]


def _read_pool(con: sqlite3.Connection, table: str, column: str) -> ColumnPool:
    q_table, q_col = table.replace('"', '""'), column.replace('"', '""')
    try:
        values = [v for (v,) in con.execute(
            f'SELECT DISTINCT "{q_col}" FROM "{q_table}" WHERE "{q_col}" IS NOT NULL LIMIT {ORIGINAL_SAMPLE}')]
        total, nulls, distinct = con.execute(
            f'SELECT count(*), count(*) - count("{q_col}"), count(DISTINCT "{q_col}") FROM "{q_table}"').fetchone()
    except sqlite3.Error:
        return ColumnPool()
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    pool = ColumnPool(original=sorted(values, key=repr), null_rate=min(0.2, nulls / total) if total else 0.0,
                      unique=total >= 2 and nulls == 0 and distinct == total)
    if numbers and len(numbers) * 2 >= len(values):
        pool.numeric, pool.integer = True, all(isinstance(v, int) for v in numbers)
        pool.low, pool.high = min(numbers), max(numbers)
    return pool


def _fresh(pool: ColumnPool, rng: random.Random):
    if pool.numeric:
        span = max(pool.high - pool.low, 10)
        low, high = pool.low - span / 2, pool.high + span / 2
        return rng.randint(int(low), int(high)) if pool.integer else round(rng.uniform(low, high), 2)
    if pool.original and rng.random() < 0.5:  # a near-copy of an original value: same shape, another value
        base = str(rng.choice(pool.original))
        return base[:-1] + rng.choice(string.ascii_lowercase) if base else "a"
    return "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(3, 8)))


def _table_order(schema: Schema) -> list[TablePlan]:
    """Tables with their keys, parents before children (cycles and self-references broken)."""
    plans = {}
    depends: dict[str, set[str]] = {}
    for t in schema.tables:
        names = [c.name for c in t.columns]
        low = [n.lower() for n in names]
        key = [low.index(k.lower()) for k in t.primary_keys if k.lower() in low]
        parents = {}
        for fk in schema.foreign_keys:
            if fk.table.lower() == t.name.lower() and fk.column.lower() in low and fk.ref_table.lower() != t.name.lower():
                parents[low.index(fk.column.lower())] = (fk.ref_table.lower(), fk.ref_column.lower())
        plans[t.name.lower()] = TablePlan(t.name, names, key, parents)
        depends[t.name.lower()] = {p[0] for p in parents.values()}
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in order or name in visiting or name not in plans:
            return
        visiting.add(name)
        for parent in sorted(depends[name]):
            visit(parent)
        visiting.discard(name)
        order.append(name)

    for name in plans:
        visit(name)
    return [plans[n] for n in order]
