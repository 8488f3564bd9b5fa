"""A query's literal values, and value plugging: the gold query's values put into a prediction.

Value plugging is the official evaluator's ``--plug_value`` option (test-suite-sql-eval), for systems
that predict SQL skeletons and leave values to someone else: the prediction is executed with the
gold query's values. Values are what the official option counts as values: every number and string
literal (LIMIT's number too) and every double-quoted word in a value position (Spider writes
``WHERE name = "Joe"``; SQLite reads it as a string when no column has that name).

The official code enumerates every assignment of the gold's distinct values to the prediction's
value slots (|values| ** slots executions, and the unplugged prediction). We build one prediction,
deterministically: a slot whose value already is one of the gold's values keeps it (and uses it
up); the other slots take the unused gold values in order; slots beyond the gold's values keep
their own. The text is edited at the literals' positions only (sqlglot's token offsets), so the
rest of the query is executed exactly as written.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlglot import exp

from t2s_bench.datasets.schema import Schema
from t2s_bench.sql.parse import SQLParseError, parse_sql
from t2s_bench.sql.resolve import in_value_position


@dataclass(frozen=True)
class Value:
    start: int  # offsets into the SQL text, end inclusive (sqlglot's token positions)
    end: int
    text: str  # as written: 'abc', "abc", 12, 1.5

    @property
    def key(self) -> str:
        """The value itself, for comparison: quotes dropped, numbers normalised (1.0 == 1)."""
        t = self.text
        if len(t) >= 2 and t[0] == t[-1] and t[0] in "'\"":
            return "s:" + t[1:-1].replace(t[0] * 2, t[0])
        try:
            return f"n:{float(t)!r}"
        except ValueError:
            return "s:" + t


def sql_values(sql: str, schema: Schema | None = None) -> list[Value]:
    """The literal values of `sql` in textual order; raises SQLParseError when it does not parse.

    A double-quoted name counts as a value in a value position unless `schema` has a column of
    that name (then it is a quoted column)."""
    tree = parse_sql(sql)
    columns = {c.name.lower() for t in schema.tables for c in t.columns} if schema is not None else set()
    out = []
    for node in tree.walk():
        if isinstance(node, exp.Literal):
            meta = node.meta
        elif (isinstance(node, exp.Column) and not node.table and isinstance(node.this, exp.Identifier)
              and node.this.quoted and in_value_position(node) and node.name.lower() not in columns):
            meta = node.this.meta
        else:
            continue
        if "start" in meta and "end" in meta:
            out.append(Value(meta["start"], meta["end"], sql[meta["start"]: meta["end"] + 1]))
    return sorted(set(out), key=lambda v: v.start)


def plug_values(gold_sql: str, pred_sql: str, schema: Schema | None = None) -> str:
    """`pred_sql` with the gold query's values (see the module docstring); the prediction
    unchanged when either query does not parse or the prediction has no values."""
    try:
        gold, pred = sql_values(gold_sql, schema), sql_values(pred_sql, schema)
    except SQLParseError:
        return pred_sql
    if not pred or not gold:
        return pred_sql
    unused = Counter(v.key for v in gold)
    keep = []
    for slot in pred:  # slots that already hold a gold value keep it
        if unused[slot.key] > 0:
            unused[slot.key] -= 1
            keep.append(True)
        else:
            keep.append(False)
    free = []
    for v in gold:  # the gold values not used up, in the gold's order
        if unused[v.key] > 0:
            unused[v.key] -= 1
            free.append(v.text)
    text = pred_sql
    replacements = [(slot, free.pop(0)) for slot, kept in zip(pred, keep) if not kept and free]
    for slot, value in sorted(replacements, key=lambda r: r[0].start, reverse=True):
        text = text[: slot.start] + value + text[slot.end + 1:]
    return text
