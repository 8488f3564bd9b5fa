"""Structural features of one SQL query from its sqlglot tree: the one definition used by the
dataset statistics and the report breakdowns.

`nested` means a SELECT inside another SELECT's clauses (a subquery); the two sides of a set
operation (UNION / INTERSECT / EXCEPT) are not nesting, they are `set_op`.
"""

from __future__ import annotations

from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.errors import TokenError

from t2s_bench.sql.parse import SQLParseError, parse_sql


@lru_cache(maxsize=20_000)
def sql_features(sql: str) -> dict:
    """chars, tokens, parsed, tables, joins, nested, set_op, group_by, having, order_by, limit,
    aggregate; structure fields are None when the query does not parse."""
    sql = sql or ""
    try:
        n_tokens: int | None = len(sqlglot.tokenize(sql, read="sqlite"))
    except TokenError:
        n_tokens = None
    out: dict = {"chars": len(sql), "tokens": n_tokens, "parsed": False, "tables": None, "joins": None,
                 "nested": None, "set_op": None, "group_by": None, "having": None, "order_by": None,
                 "limit": None, "aggregate": None}
    try:
        tree = parse_sql(sql)
    except SQLParseError:
        return out
    selects = list(tree.find_all(exp.Select))
    set_ops = list(tree.find_all(exp.Union, exp.Intersect, exp.Except))
    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    tables = {t.name.lower() for t in tree.find_all(exp.Table) if t.name and t.name.lower() not in ctes}
    nested = any(isinstance(s.parent, exp.Subquery) or s.find_ancestor(exp.Select) for s in selects)
    out.update(
        parsed=True,
        tables=len(tables),
        joins=sum(1 for _ in tree.find_all(exp.Join)),
        nested=bool(nested),
        set_op=set_ops[0].key.upper() if set_ops else None,
        group_by=any(s.args.get("group") for s in selects),
        having=any(s.args.get("having") for s in selects),
        order_by=tree.find(exp.Order) is not None,
        limit=tree.find(exp.Limit) is not None,
        aggregate=tree.find(exp.AggFunc) is not None,
    )
    return out
