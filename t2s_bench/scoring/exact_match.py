"""Spider's exact-set match, reimplemented on `SpiderSQL` components.

Rules (those of the official evaluator, test-suite-sql-eval's evaluation.py):

- literal values are ignored; nested queries are compared as whole structures;
- DISTINCT is ignored in the top-level query and its set-operation operands (SELECT DISTINCT and
  COUNT(DISTINCT x) alike); it still counts inside nested condition subqueries, as officially;
- a column linked by foreign keys to others is replaced by one representative of its group (the one
  with the lowest Spider column index) when its table is in the query's FROM, so
  ``T2.singer_id`` and ``T1.singer_id`` of a join match;
- SELECT: the multiset of (aggregate, value unit) — order free;
- WHERE: the multiset of conditions (negation, operator, value unit, nested queries);
- GROUP BY: the same column list (in order) and the same HAVING (in order) when either side groups;
- ORDER BY: the same direction and expressions, and LIMIT present on both or neither;
- AND/OR: the set of WHERE connectors; IUEN: INTERSECT/UNION/EXCEPT present on the same side and
  their operands exactly matching (recursively); keywords: the same set of clause keywords
  (where, group, having, order, asc/desc, limit, except, union, intersect, or, not, in, like);
- finally the multiset of FROM items (tables, nested FROM queries) must be equal. Join conditions
  themselves are not compared (the test-suite evaluator does not).
"""

from __future__ import annotations

import sqlite3
from collections import Counter

from t2s_bench.datasets.schema import Schema
from t2s_bench.sql.components import SpiderSQL, UnsupportedSQL, extract, schema_index
from t2s_bench.sql.parse import SQLParseError


def exact_match(gold_sql: str, pred_sql: str, schema: Schema) -> bool:
    """Exact-set match of a prediction against the gold query.

    A prediction that does not parse, or falls outside Spider's grammar, is not a match.
    Raises UnsupportedSQL / SQLParseError when the *gold* query cannot be decomposed.
    """
    gold = extract(gold_sql, schema, strict=True)
    try:
        pred = extract(pred_sql, schema, strict=True)
    except (SQLParseError, UnsupportedSQL):
        return False
    return components_match(gold, pred, schema) and sqlite_compiles(pred_sql, schema)


_EMPTY_DBS: dict[int, tuple[Schema, sqlite3.Connection]] = {}


def sqlite_compiles(sql: str, schema: Schema) -> bool:
    """Whether SQLite accepts `sql` against the schema's tables (compiled with EXPLAIN on an empty
    in-memory copy of the schema, never run): SQL that cannot run (``GROUP BY x WHERE ...``, which
    sqlglot reads leniently) is never an exact match."""
    hit = _EMPTY_DBS.get(id(schema))
    if hit is None or hit[0] is not schema:
        conn = sqlite3.connect(":memory:", check_same_thread=False)
        for table in schema.tables:
            if table.name.lower().startswith("sqlite_"):
                continue  # SQLite's own tables (sqlite_sequence) cannot be created
            names = {c.name.lower(): c.name for c in table.columns}  # SQLite refuses duplicate names
            try:
                conn.execute(f"CREATE TABLE {_quote(table.name)} ({', '.join(map(_quote, names.values())) or 'x'})")
            except sqlite3.Error:  # e.g. a table listed twice: the first definition stands
                pass
        if len(_EMPTY_DBS) > 256:
            _EMPTY_DBS.clear()
        hit = _EMPTY_DBS[id(schema)] = (schema, conn)
    try:
        hit[1].execute("EXPLAIN " + sql).fetchall()
        return True
    except (sqlite3.Error, sqlite3.Warning, ValueError):
        return False


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def components_match(gold: SpiderSQL, pred: SpiderSQL, schema: Schema | None) -> bool:
    kmap = foreign_key_map(schema)
    return _match(_rebuild(gold, kmap, schema), _rebuild(pred, kmap, schema))


_FK_CACHE: dict[int, tuple] = {}


def foreign_key_map(schema: Schema | None) -> dict[str, str]:
    """'table.column' -> representative column, grouping columns linked by foreign keys.

    Groups are formed as the official `build_foreign_key_map` forms them: foreign keys are taken in
    order and each pair joins the first existing group holding either column (groups are not
    merged); every member maps to the group's lowest-index column.
    """
    if schema is None:
        return {}
    hit = _FK_CACHE.get(id(schema))
    if hit is not None and hit[0] is schema and hit[1] == len(schema.foreign_keys):
        return hit[2]
    index_of, name_of = {}, {}
    for table in schema.tables:
        for col in table.columns:
            key = f"{table.name.lower()}.{col.name.lower()}"
            index_of[key] = col.index
            name_of[col.index] = key
    groups: list[set[int]] = []
    for fk in schema.foreign_keys:
        a = index_of.get(f"{fk.table.lower()}.{fk.column.lower()}")
        b = index_of.get(f"{fk.ref_table.lower()}.{fk.ref_column.lower()}")
        if a is None or b is None:
            continue
        group = next((g for g in groups if a in g or b in g), None)
        if group is None:
            group = set()
            groups.append(group)
        group.update((a, b))
    out: dict[str, str] = {}
    for group in groups:
        rep = name_of[min(group)]
        for idx in group:
            out[name_of[idx]] = rep
    if len(_FK_CACHE) > 512:
        _FK_CACHE.clear()
    _FK_CACHE[id(schema)] = (schema, len(schema.foreign_keys), out)
    return out


def _rebuild(sql: SpiderSQL, kmap: dict[str, str], schema: Schema | None, valid: set[str] | None = None) -> SpiderSQL:
    """The official normalisation: foreign-key representatives (for columns of the FROM tables)
    and no DISTINCT flags, applied to the top query and its set-operation operands, which use
    the top query's FROM tables. Nested condition queries are left as they are."""
    if valid is None:
        index = schema_index(schema)
        valid = {f"{t}.{c}" for t in sql.tables() for c in index.columns.get(t, [])}

    def col(cu):
        if cu is None:
            return None
        agg, column, _ = cu
        if column in kmap and column in valid:
            column = kmap[column]
        return agg, column, None

    def val(vu):
        return None if vu is None else (vu[0], col(vu[1]), col(vu[2]))

    def cond(items):
        return [it if isinstance(it, str) else (it[0], it[1], val(it[2]), it[3], it[4]) for it in items]

    out = SpiderSQL(
        select=(None, [(agg, val(vu)) for agg, vu in sql.select[1]]),
        table_units=list(sql.table_units),
        from_conds=cond(sql.from_conds),
        where=cond(sql.where),
        group_by=[col(cu) for cu in sql.group_by],
        having=cond(sql.having),
        order_by=None if sql.order_by is None else (sql.order_by[0], [val(v) for v in sql.order_by[1]]),
        has_limit=sql.has_limit,
    )
    for name in ("intersect", "union", "except_"):
        sub = getattr(sql, name)
        setattr(out, name, None if sub is None else _rebuild(sub, kmap, schema, valid))
    return out


def _same_multiset(a: list, b: list) -> bool:
    if len(a) != len(b):
        return False
    try:
        return Counter(map(_freeze, a)) == Counter(map(_freeze, b))
    except TypeError:
        rest = list(b)
        for item in a:
            if item not in rest:
                return False
            rest.remove(item)
        return True


def _freeze(x):
    """Hashable form of units (SpiderSQL inside becomes its repr, which is deterministic)."""
    if isinstance(x, SpiderSQL):
        return ("sql", repr(x))
    if isinstance(x, (list, tuple)):
        return tuple(_freeze(v) for v in x)
    return x


def keywords(sql: SpiderSQL) -> set[str]:
    out = set()
    if sql.where:
        out.add("where")
    if sql.group_by:
        out.add("group")
    if sql.having:
        out.add("having")
    if sql.order_by:
        out.update((sql.order_by[0], "order"))
    if sql.has_limit:
        out.add("limit")
    for name, sub in sql.set_ops().items():
        if sub is not None:
            out.add(name)
    if "or" in sql.connectors():
        out.add("or")
    conds = sql.conditions()
    if any(c[0] for c in conds):
        out.add("not")
    if any(c[1] == "in" for c in conds):
        out.add("in")
    if any(c[1] == "like" for c in conds):
        out.add("like")
    return out


def _match(gold: SpiderSQL, pred: SpiderSQL) -> bool:
    if not _same_multiset(gold.select[1], pred.select[1]):
        return False
    if not _same_multiset(gold.where[::2], pred.where[::2]):
        return False
    if bool(gold.group_by) != bool(pred.group_by):
        return False
    if gold.group_by and ([c[1] for c in gold.group_by] != [c[1] for c in pred.group_by] or gold.having != pred.having):
        return False
    if bool(gold.order_by) != bool(pred.order_by):
        return False
    if gold.order_by and (gold.order_by != pred.order_by or gold.has_limit != pred.has_limit):
        return False
    if set(gold.where[1::2]) != set(pred.where[1::2]):
        return False
    for name, g_sub in gold.set_ops().items():
        p_sub = pred.set_ops()[name]
        if (g_sub is None) != (p_sub is None):
            return False
        if g_sub is not None and not _match(g_sub, p_sub):
            return False
    if keywords(gold) != keywords(pred):
        return False
    return _same_multiset(gold.table_units, pred.table_units)
