"""Near-miss mutants of a gold query: one small edit each, made on the sqlglot tree.

A mutant is what a system that *almost* understood the question would write: a dropped or
changed condition, a swapped column, another aggregate, another comparison operator, DISTINCT
added or removed, the other ORDER BY direction, another LIMIT, another set operation. A test
suite is good when it tells every such mutant apart from the gold (the mutant is *killed*);
the distillation (`distill.py`) keeps the databases that kill the most of them.

Edits that no database of ours could tell apart are not made: a column swapped inside COUNT(col)
or COUNT(col) made COUNT(*) (they differ only on NULLs, and neighbours put NULLs only where the
original has them), and the LIMIT of a subquery used as one value (SQLite takes its first row).

Mutants are generated, not enumerated exhaustively: column swaps take at most
``MAX_SWAPS_PER_COLUMN`` other columns of the same table (the same Spider type first), chosen
by a seeded generator, so the set is deterministic for a seed; a GROUP BY column is swapped for
every other column of its table (grouping by a name instead of an id is a common near miss).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sqlglot import exp

from t2s_bench.datasets.schema import Schema
from t2s_bench.sql.parse import DIALECT, SQLParseError, parse_sql

MAX_SWAPS_PER_COLUMN = 2

# comparison operator -> the operators a near miss uses instead
_COMPARISONS: dict[type[exp.Expression], tuple[type[exp.Expression], ...]] = {
    exp.GT: (exp.GTE, exp.LT),
    exp.GTE: (exp.GT, exp.LTE),
    exp.LT: (exp.LTE, exp.GT),
    exp.LTE: (exp.LT, exp.GTE),
    exp.EQ: (exp.NEQ,),
    exp.NEQ: (exp.EQ,),
}
# aggregate -> the aggregates a near miss uses instead
_AGGREGATES: dict[type[exp.Expression], tuple[type[exp.Expression], ...]] = {
    exp.Max: (exp.Min,),
    exp.Min: (exp.Max,),
    exp.Sum: (exp.Avg,),
    exp.Avg: (exp.Sum, exp.Max),
}
_SET_OPERATIONS = (exp.Union, exp.Intersect, exp.Except)


@dataclass(frozen=True)
class Mutant:
    kind: str  # "comparison", "drop_condition", "swap_column", ...
    sql: str


def mutants(gold_sql: str, schema: Schema | None = None, *, seed: int = 0) -> list[Mutant]:
    """The distinct near-miss mutants of `gold_sql` (none equal to the gold's own rendering);
    an empty list when sqlglot cannot parse the gold."""
    try:
        tree = parse_sql(gold_sql)
    except SQLParseError:
        return []
    rng = random.Random(f"{seed}:{gold_sql}")
    seen = {_render(tree)}
    out: list[Mutant] = []
    nodes = list(tree.walk())
    for position, node in enumerate(nodes):
        for kind, edit in _edits(node, tree, schema, rng):
            copy = tree.copy()
            target = list(copy.walk())[position]  # walk order is the same on a copy
            try:
                replaced = edit(target)
                sql = _render(replaced if target is copy and replaced is not None else copy)
            except Exception:  # an edit sqlglot cannot render is simply not a mutant
                continue
            if sql not in seen:
                seen.add(sql)
                out.append(Mutant(kind, sql))
    return out


def render(sql: str) -> str | None:
    """sqlglot's rendering of a query (what its mutants are compared with), None when unparsable."""
    try:
        return _render(parse_sql(sql))
    except SQLParseError:
        return None


def _render(tree: exp.Expression) -> str:
    return tree.sql(dialect=DIALECT)


Edit = Callable[[exp.Expression], "exp.Expression | None"]  # mutates the node; what replaces it, if anything


def _edits(node: exp.Expression, tree: exp.Expression, schema: Schema | None,
           rng: random.Random) -> Iterator[tuple[str, Edit]]:
    if type(node) in _COMPARISONS:
        for op in _COMPARISONS[type(node)]:
            yield "comparison", _replace_binary(op)
    if isinstance(node, exp.Like):
        yield "comparison", _like_to_equality
    if isinstance(node, exp.In) or isinstance(node, exp.Not) and isinstance(node.this, exp.In):
        yield "comparison", _toggle_not
    if isinstance(node, (exp.And, exp.Or)):
        yield "drop_condition", lambda n: _keep_child(n, "this")
        yield "drop_condition", lambda n: _keep_child(n, "expression")
        yield "change_connective", _swap_connective
    if isinstance(node, (exp.Where, exp.Having)):
        yield "drop_condition", _pop
    if type(node) in _AGGREGATES:
        for agg in _AGGREGATES[type(node)]:
            yield "aggregate", _replace_function(agg)
    if isinstance(node, exp.Select):
        yield "distinct", _toggle_distinct
        if node.args.get("limit") is None and node.args.get("order") is not None:
            yield "limit", lambda n: n.limit(1, copy=False)
    if isinstance(node, exp.Ordered):
        yield "order", _toggle_direction
    if isinstance(node, exp.Order):
        yield "order", _pop
    if isinstance(node, exp.Limit) and not _in_scalar_subquery(node):
        yield "limit", _pop
        yield "limit", _bump_limit
    if isinstance(node, _SET_OPERATIONS):
        for other in _SET_OPERATIONS:
            if not isinstance(node, other):
                yield "set_operation", _replace_set_operation(other)
    if (isinstance(node, exp.Column) and schema is not None and isinstance(node.this, exp.Identifier)
            and not _counted(node)):
        for column in _swap_candidates(node, tree, schema, rng):
            yield "swap_column", _rename_column(column)


def _counted(node: exp.Expression) -> bool:
    """COUNT(col) or COUNT(DISTINCT col): another column counts the same rows unless NULLs differ."""
    parent = node.parent
    if isinstance(parent, exp.Distinct):
        parent = parent.parent
    return isinstance(parent, exp.Count)


def _in_scalar_subquery(node: exp.Expression) -> bool:
    """Whether `node` is in a subquery used as one value (`x = (SELECT ... LIMIT 1)`): SQLite takes
    its first row, so its LIMIT changes nothing."""
    sub = node.find_ancestor(exp.Subquery)
    return sub is not None and isinstance(sub.parent, (exp.Binary, exp.Select, exp.Paren)) and not isinstance(
        sub.parent, (exp.Union, exp.Intersect, exp.Except))


# --- the edits ------------------------------------------------------------------------------
def _replace_binary(op: type[exp.Expression]) -> Edit:
    return lambda n: n.replace(op(this=n.this, expression=n.expression))


def _like_to_equality(n: exp.Expression) -> None:
    n.replace(exp.EQ(this=n.this, expression=n.expression))


def _toggle_not(n: exp.Expression) -> None:
    n.replace(n.this if isinstance(n, exp.Not) else exp.Not(this=n.copy()))


def _keep_child(n: exp.Expression, key: str) -> exp.Expression:
    return n.replace(n.args[key])


def _swap_connective(n: exp.Expression) -> None:
    other = exp.Or if isinstance(n, exp.And) else exp.And
    n.replace(exp.Paren(this=other(this=n.this, expression=n.expression)))


def _pop(n: exp.Expression) -> None:
    n.pop()


def _replace_function(fn: type[exp.Expression]) -> Edit:
    return lambda n: n.replace(fn(this=n.this))


def _toggle_distinct(n: exp.Expression) -> None:
    n.set("distinct", None if n.args.get("distinct") else exp.Distinct())


def _toggle_direction(n: exp.Expression) -> None:
    desc = not n.args.get("desc")
    n.set("desc", desc)
    n.set("nulls_first", not desc)  # SQLite's default NULL placement for the new direction


def _bump_limit(n: exp.Expression) -> None:
    value = n.expression
    if isinstance(value, exp.Literal) and value.is_int:
        n.set("expression", exp.Literal.number(int(value.this) + 1))
    else:
        raise ValueError("not a constant limit")


def _replace_set_operation(op: type[exp.Expression]) -> Edit:
    return lambda n: n.replace(op(this=n.this, expression=n.expression, distinct=n.args.get("distinct", True)))


def _rename_column(name: str) -> Edit:
    return lambda n: n.set("this", exp.to_identifier(name))


def _swap_candidates(col: exp.Column, tree: exp.Expression, schema: Schema, rng: random.Random) -> list[str]:
    """Other columns of the column's table, those of the same Spider type first."""
    table = owning_table(col, tree, schema)
    if table is None:
        return []
    here = table.column(col.name)
    others = [c for c in table.columns if c.name.lower() != col.name.lower()]
    rng.shuffle(others)
    if here is not None:
        others.sort(key=lambda c: c.type != here.type)  # stable: same type first, shuffled within
    if col.find_ancestor(exp.Group) is not None:  # grouping by another column (name for id): every one
        return [c.name for c in others]
    return [c.name for c in others[:MAX_SWAPS_PER_COLUMN]]


def owning_table(col: exp.Column, tree: exp.Expression, schema: Schema):
    """The schema table a column of `tree` belongs to (aliases resolved), or None."""
    aliases = _aliases(col.find_ancestor(exp.Select), tree)
    if col.table:
        found = schema.table(aliases.get(col.table.lower(), col.table))
        return found if found is not None and found.column(col.name) is not None else None
    for name in dict.fromkeys(aliases.values()):  # unqualified: the first table of the query that has it
        found = schema.table(name)
        if found is not None and found.column(col.name) is not None:
            return found
    return None


def _aliases(scope: exp.Expression | None, tree: exp.Expression) -> dict[str, str]:
    """alias or name (lower case) -> table name, for the tables of the column's own SELECT (the
    whole query's when that SELECT has none, e.g. a correlated reference)."""
    out: dict[str, str] = {}
    for within_scope in (True, False):
        for t in (scope or tree).find_all(exp.Table) if within_scope else tree.find_all(exp.Table):
            if within_scope and t.find_ancestor(exp.Select) is not scope:
                continue
            out.setdefault((t.alias_or_name or t.name).lower(), t.name)
            out.setdefault(t.name.lower(), t.name)
        if out:
            break
    return out
