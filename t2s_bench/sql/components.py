"""Spider's SQL components, extracted from a sqlglot AST.

The official evaluator (process_sql.py) turns a query into a nested structure of "units";
this module builds the same structure from a sqlglot tree so that hardness and exact-set
match can apply Spider's rules unchanged:

- ``col_unit = (agg, column, distinct)``: ``agg`` in ``AGGS``, ``column`` is ``"table.column"``
  in lower case (aliases resolved through the schema) or ``"*"``;
- ``val_unit = (op, col_unit1, col_unit2)``: ``op`` in ``UNIT_OPS`` (``col_unit2`` is None for "none");
- ``cond_unit = (negated, op, val_unit, val1, val2)``: ``op`` in ``WHERE_OPS``; values are None
  except nested queries, which are `SpiderSQL` objects (literal values never matter to Spider);
- a *condition* is a flat list ``[cond_unit, "and"|"or", cond_unit, ...]`` in textual order;
- ``select = (distinct, [(agg, val_unit), ...])``; ``table_units`` are ``("table", name)`` or
  ``("sql", SpiderSQL)``; ``order_by = (direction, [val_unit, ...])`` or None.

Set operations are chained as Spider does: ``A UNION B EXCEPT C`` is A with ``union`` = B and
B with ``except_`` = C; an ORDER BY/LIMIT written after the last operand belongs to that operand.

``strict=True`` refuses anything outside Spider's grammar (raises `UnsupportedSQL`), as needed for
exact match; ``strict=False`` is best effort (unknown expressions become placeholders), enough
for hardness, which only counts clauses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlglot import exp

from t2s_bench.datasets.schema import Schema
from t2s_bench.sql.parse import parse_shared
from t2s_bench.sql.resolve import Frame, SchemaIndex, Source, find_source, resolve_column, schema_index

__all__ = ["SpiderSQL", "UnsupportedSQL", "SchemaIndex", "extract", "schema_index"]

AGGS = ("none", "max", "min", "count", "sum", "avg")
UNIT_OPS = ("none", "-", "+", "*", "/")
WHERE_OPS = ("not", "between", "=", ">", "<", ">=", "<=", "!=", "in", "like", "is", "exists")

_AGG_CLASSES = {exp.Max: "max", exp.Min: "min", exp.Count: "count", exp.Sum: "sum", exp.Avg: "avg"}
_UNIT_CLASSES = {exp.Sub: "-", exp.Add: "+", exp.Mul: "*", exp.Div: "/"}
_CMP_CLASSES = {exp.EQ: "=", exp.GT: ">", exp.LT: "<", exp.GTE: ">=", exp.LTE: "<=", exp.NEQ: "!="}
_SET_OPS = {exp.Union: "union", exp.Intersect: "intersect", exp.Except: "except_"}
UNKNOWN = "?"  # placeholder column in best-effort mode


class UnsupportedSQL(ValueError):
    """The query is valid SQL but outside Spider's grammar (or names unknown schema items)."""


@dataclass
class SpiderSQL:
    select: tuple = (False, [])
    table_units: list = field(default_factory=list)
    from_conds: list = field(default_factory=list)
    where: list = field(default_factory=list)
    group_by: list = field(default_factory=list)
    having: list = field(default_factory=list)
    order_by: tuple | None = None
    has_limit: bool = False
    intersect: SpiderSQL | None = None
    union: SpiderSQL | None = None
    except_: SpiderSQL | None = None

    def set_ops(self) -> dict[str, SpiderSQL | None]:
        return {"intersect": self.intersect, "except": self.except_, "union": self.union}

    def conditions(self) -> list:
        """cond_units of FROM ... ON, WHERE and HAVING (Spider counts them together)."""
        return self.from_conds[::2] + self.where[::2] + self.having[::2]

    def connectors(self) -> list[str]:
        return self.from_conds[1::2] + self.where[1::2] + self.having[1::2]

    def tables(self) -> list[str]:
        return [name for kind, name in self.table_units if kind == "table"]


def extract(sql: str | exp.Expression, schema: Schema | None, *, strict: bool = True) -> SpiderSQL:
    """Spider components of one query. Raises SQLParseError (unparsable) or UnsupportedSQL."""
    tree = parse_shared(sql) if isinstance(sql, str) else sql
    return _Extractor(schema_index(schema), strict).query(tree, None)  # reads the tree, never edits it


class _Scope:
    def __init__(self, parent: _Scope | None):
        self.parent = parent
        self.frame = Frame()  # alias or table name -> table, in FROM order (Spider's "default tables")
        self.select_aliases: dict[str, exp.Expression] = {}

    def frames(self):
        s: _Scope | None = self
        while s is not None:
            yield s.frame
            s = s.parent


class _Extractor:
    def __init__(self, index: SchemaIndex, strict: bool):
        self.index = index
        self.strict = strict

    def fail(self, what: str):
        if self.strict:
            raise UnsupportedSQL(what)

    # --- queries ---------------------------------------------------------------------------
    def query(self, node: exp.Expression, parent: _Scope | None, trailing: dict | None = None) -> SpiderSQL:
        while isinstance(node, (exp.Subquery, exp.Paren)):
            node = node.this
        if isinstance(node, exp.SetOperation):
            return self.set_operation(node, parent)
        if isinstance(node, exp.Select):
            return self.select(node, parent, trailing or {})
        self.fail(f"not a SELECT query: {type(node).__name__}")
        return SpiderSQL()

    def set_operation(self, node: exp.SetOperation, parent: _Scope | None) -> SpiderSQL:
        # ORDER BY / LIMIT written after the last operand belong to it in Spider's grammar
        trailing = {k: node.args.get(k) for k in ("order", "limit", "offset") if node.args.get(k)}
        chain = []
        cur: exp.Expression = node
        while isinstance(cur, exp.SetOperation):
            if self.strict and cur.args.get("distinct") is False:
                raise UnsupportedSQL(f"{type(cur).__name__.upper()} ALL")
            chain.append((_SET_OPS[type(cur)], cur.expression))
            cur = cur.this
        chain.reverse()
        head = self.query(cur, parent)
        tail = _last(head)
        for n, (op, operand) in enumerate(chain):
            is_last = n == len(chain) - 1
            nxt = self.query(operand, parent, trailing if is_last else None)
            setattr(tail, op, nxt)
            tail = _last(nxt)
        return head

    def select(self, node: exp.Select, parent: _Scope | None, trailing: dict) -> SpiderSQL:
        """`trailing`: ORDER BY / LIMIT of an enclosing set operation, owned by this last operand."""

        def clause(key):
            return node.args.get(key) or trailing.get(key)

        if self.strict:
            for key in ("with_", "with", "windows", "qualify", "laterals", "pivots"):
                if node.args.get(key):
                    raise UnsupportedSQL(f"{key} clause")
        scope = _Scope(parent)
        out = SpiderSQL()
        self.from_clause(node, scope, out)
        for item in node.expressions:
            if isinstance(item, exp.Alias):
                scope.select_aliases[item.alias.lower()] = item.this
        distinct = node.args.get("distinct") is not None
        if self.strict and isinstance(node.args.get("distinct"), exp.Distinct) and node.args["distinct"].args.get("on"):
            raise UnsupportedSQL("DISTINCT ON")
        out.select = (distinct, [self.select_item(e, scope) for e in node.expressions])
        where = node.args.get("where")
        if where is not None:
            out.where = self.condition(where.this, scope)
        group = node.args.get("group")
        if group is not None:
            out.group_by = [self.col_unit(e, scope) for e in group.expressions]
        having = node.args.get("having")
        if having is not None:
            out.having = self.condition(having.this, scope)
        order = clause("order")
        if order is not None:
            direction = "asc"
            units = []
            for o in order.expressions:
                units.append(self.val_unit(o.this, scope))
                if o.args.get("desc") is True:
                    direction = "desc"
                elif o.args.get("desc") is False:  # an explicit ASC
                    direction = "asc"
            out.order_by = (direction, units)
        out.has_limit = clause("limit") is not None
        return out

    def from_clause(self, node: exp.Select, scope: _Scope, out: SpiderSQL) -> None:
        source = node.args.get("from_") or node.args.get("from")
        if source is None:
            self.fail("SELECT without FROM")
            return
        self.table_unit(source.this, scope, out)
        conds: list = []
        for join in node.args.get("joins") or []:
            side, kind = (join.side or "").upper(), (join.kind or "").upper()
            if self.strict and (side or kind not in ("", "INNER", "CROSS") or join.args.get("using")):
                raise UnsupportedSQL(f"{' '.join(x for x in (side, kind) if x)} JOIN".strip())
            self.table_unit(join.this, scope, out)
            on = join.args.get("on")
            if isinstance(on, exp.Boolean) and on.this is True:  # sqlglot's stand-in for a bare JOIN
                on = None
            if on is not None:
                if conds:
                    conds.append("and")
                conds.extend(self.condition(on, scope))
        out.from_conds = conds

    def table_unit(self, node: exp.Expression, scope: _Scope, out: SpiderSQL) -> None:
        if isinstance(node, exp.Table) and isinstance(node.this, exp.Identifier):
            name = node.name.lower()
            if not self.index.has_table(name):
                self.fail(f"unknown table {node.name!r}")
            out.table_units.append(("table", name))
            scope.frame.add(name, Source(name))
            if node.alias:
                scope.frame.add(node.alias, Source(name))
        elif isinstance(node, exp.Subquery):
            out.table_units.append(("sql", self.query(node.this, scope)))
            if node.alias:
                scope.frame.add(node.alias, Source(None))
        else:
            self.fail(f"unsupported FROM item {type(node).__name__}")
            out.table_units.append(("table", UNKNOWN))

    # --- expressions -----------------------------------------------------------------------
    def select_item(self, node: exp.Expression, scope: _Scope) -> tuple:
        node = _unwrap(node)
        agg = _AGG_CLASSES.get(type(node))
        if agg is not None:
            arg = node.this
            if isinstance(arg, exp.Distinct):
                inner = arg.expressions[0] if arg.expressions else None
                unit = self.val_unit(inner, scope)
                first = unit[1]
                return agg, (unit[0], (first[0], first[1], True), unit[2])
            return agg, self.val_unit(arg, scope)
        return "none", self.val_unit(node, scope)

    def val_unit(self, node: exp.Expression | None, scope: _Scope) -> tuple:
        node = _unwrap(node)
        node = self.alias_target(node, scope) or node
        op = _UNIT_CLASSES.get(type(node))
        if op is not None:
            return op, self.col_unit(node.this, scope), self.col_unit(node.expression, scope)
        return "none", self.col_unit(node, scope), None

    def col_unit(self, node: exp.Expression | None, scope: _Scope) -> tuple:
        node = _unwrap(node)
        node = self.alias_target(node, scope) or node
        agg = _AGG_CLASSES.get(type(node))
        if agg is not None:
            arg, distinct = node.this, False
            if isinstance(arg, exp.Distinct):
                arg, distinct = (arg.expressions[0] if arg.expressions else None), True
            return agg, self.column(_unwrap(arg), scope), distinct
        if isinstance(node, exp.Distinct) and len(node.expressions) == 1:
            return "none", self.column(_unwrap(node.expressions[0]), scope), True
        return "none", self.column(node, scope), False

    def column(self, node: exp.Expression | None, scope: _Scope) -> str:
        if isinstance(node, exp.Star):
            return "*"
        if isinstance(node, exp.Column):
            if isinstance(node.this, exp.Star):
                return "*"
            return self.resolve(node, scope)
        self.fail(f"expression outside Spider's grammar: {node.sql(dialect='sqlite') if node is not None else None}")
        return UNKNOWN

    def resolve(self, col: exp.Column, scope: _Scope) -> str:
        name = col.name.lower()
        qualifier = col.table.lower() if col.table else ""
        found = resolve_column(qualifier, name, scope.frames(), self.index, spider=True)
        if found.is_found:
            return f"{found.table}.{name}"
        self.fail(f"unknown column {col.sql(dialect='sqlite')}")
        if not qualifier:
            return f"{UNKNOWN}.{name}"
        source = find_source(qualifier, scope.frames())  # best effort: the table the qualifier names
        return f"{(source.table or UNKNOWN) if source is not None else qualifier}.{name}"

    def alias_target(self, node, scope: _Scope):
        """The SELECT expression an unqualified name stands for (ORDER BY cnt), when it names
        no column of the tables in scope."""
        if not isinstance(node, exp.Column) or node.table or isinstance(node.this, exp.Star):
            return None
        name = node.name.lower()
        if resolve_column("", name, scope.frames(), self.index, spider=True).is_found:
            return None  # a real column
        s: _Scope | None = scope
        while s is not None:
            target = s.select_aliases.get(name)
            if target is not None:
                target = _unwrap(target)
                if isinstance(target, exp.Column) and target.name.lower() == name and not target.table:
                    return None
                return target
            s = s.parent
        return None

    # --- conditions ------------------------------------------------------------------------
    def condition(self, node: exp.Expression, scope: _Scope) -> list:
        node = _unwrap_paren(node)
        if isinstance(node, exp.And):
            return self.condition(node.this, scope) + ["and"] + self.condition(node.expression, scope)
        if isinstance(node, exp.Or):
            return self.condition(node.this, scope) + ["or"] + self.condition(node.expression, scope)
        return [self.cond_unit(node, scope)]

    def cond_unit(self, node: exp.Expression, scope: _Scope) -> tuple:
        negated = False
        if isinstance(node, exp.Not):
            negated, node = True, _unwrap_paren(node.this)
            if isinstance(node, (exp.And, exp.Or)):
                self.fail("NOT applied to a compound condition")
        if isinstance(node, exp.Like) and node.args.get("negate"):
            negated = not negated
        val1 = val2 = None
        if isinstance(node, exp.Between):
            op = "between"
            val1, val2 = self.value(node.args.get("low"), scope), self.value(node.args.get("high"), scope)
        elif isinstance(node, exp.In):
            op = "in"
            query = node.args.get("query")
            if query is not None:
                val1 = self.query(query, scope)
            elif self.strict and node.args.get("unnest"):
                raise UnsupportedSQL("IN UNNEST")
        elif isinstance(node, exp.Like):
            op = "like"
            val1 = self.value(node.expression, scope)
        elif isinstance(node, exp.Is):
            op = "is"
        elif type(node) in _CMP_CLASSES:
            op = _CMP_CLASSES[type(node)]
            val1 = self.value(node.expression, scope)
        elif isinstance(node, exp.Exists):
            self.fail("EXISTS")
            return negated, "exists", ("none", ("none", UNKNOWN, False), None), self.query(node.this, scope), None
        else:
            self.fail(f"condition outside Spider's grammar: {node.sql(dialect='sqlite')}")
            return negated, "=", ("none", ("none", UNKNOWN, False), None), None, None
        lhs = node.this
        if isinstance(_unwrap(lhs), (exp.Subquery, exp.Select)):
            self.fail("subquery on the left of a condition")
            return negated, op, ("none", ("none", UNKNOWN, False), None), val1, val2
        return negated, op, self.val_unit(lhs, scope), val1, val2

    def value(self, node: exp.Expression | None, scope: _Scope):
        """A right-hand value: a nested query is kept, anything else is irrelevant to Spider."""
        inner = _unwrap_paren(node)
        if isinstance(inner, (exp.Subquery, exp.Select, exp.SetOperation)):
            return self.query(inner, scope)
        return None


def _last(sql: SpiderSQL) -> SpiderSQL:
    """The last query of a set-operation chain."""
    while True:
        nxt = next((v for v in sql.set_ops().values() if v is not None), None)
        if nxt is None:
            return sql
        sql = nxt


def _unwrap(node):
    while isinstance(node, (exp.Paren, exp.Alias)):
        node = node.this
    return node


def _unwrap_paren(node):
    while isinstance(node, exp.Paren):
        node = node.this
    return node
