"""A model of the official Spider SQL reader (process_sql.py of test-suite-sql-eval), failures included.

Published exact-match figures come from that reader. It knows a narrow grammar and reads some valid
SQL wrongly or not at all; the official evaluator then scores the prediction against an empty
query, i.e. exact match 0. `official_exact_match` reproduces that verdict so that results can be
set beside published numbers; `t2s_bench.scoring.exact_match` is the corrected metric.

What the reader does (written from reading the official code; this is a re-implementation):

- tokens: single quotes become double quotes and an odd number of quotes fails; each quoted
  span is one opaque value; the rest goes through nltk's word tokenizer, lower-cased (so ``a=b``
  and ``1,2`` stay one token);
  ``!``/``>``/``<`` followed by ``=`` are joined (so ``<>`` stays two tokens and fails);
- aliases: every ``X AS Y`` anywhere maps Y to the token before AS (column aliases too); an alias
  spelled like a table name fails; ``FROM singer T1`` (no AS), comma joins, ``INNER``/``LEFT`` JOIN,
  an aliased FROM subquery, ``NOT x IN``, ``IS [NOT] NULL``, ``EXISTS``, ``<>``, ``||``, CASE,
  functions other than the five aggregates, and ``ORDER BY`` a select alias all fail;
- clauses are read in the fixed order FROM (found as the first ``from`` token), SELECT, WHERE,
  GROUP BY, HAVING, ORDER BY, LIMIT, then one INTERSECT/UNION/EXCEPT; tokens left over are ignored
  (``LIMIT 1 OFFSET 2`` reads as LIMIT; ``GROUP BY a WHERE b = 1`` reads without its WHERE);
- an unqualified column belongs to the first FROM table that has it; ORDER BY keeps the last
  direction written; values are ignored except nested queries and, as officially, those inside a
  FROM subquery (the official value normalisation does not reach FROM subqueries).

The structure built is `SpiderSQL`, so the official matching rules of `exact_match` apply unchanged.
"""

from __future__ import annotations

import re

from t2s_bench.datasets.schema import Schema
from t2s_bench.scoring.exact_match import components_match
from t2s_bench.sql.components import AGGS, UNIT_OPS, WHERE_OPS, SpiderSQL, schema_index

CLAUSES = ("select", "from", "where", "group", "order", "limit", "intersect", "union", "except")
JOIN_WORDS = ("join", "on", "as")
CONNECTORS = ("and", "or")
SET_OPS = {"intersect": "intersect", "union": "union", "except": "except_"}
DIRECTIONS = ("desc", "asc")


class OfficialParseError(ValueError):
    """The official reader cannot read this SQL (it would score it against an empty query)."""


# nltk's word tokenizer (NLTKWordTokenizer, nltk 3.9/3.10, Apache-2.0), which the official reader uses,
# restated: importing nltk takes 7-10 s here (it loads scipy), too much for every scoring run.
# Only the rules that can fire once quoted values are out of the text (the official reader takes
# every quote out first) are kept; tests/scoring/test_exact_match_official.py checks the result
# against nltk itself on every Spider query and model output.
_SPLITS = [
    (re.compile("([«“‘„]|[`]+)"), r" \1 "),
    (re.compile(r'([^\.])(\.)([\]\)}>"\'' "»”’ " r"]*+)\s*$"), r"\1 \2 \3 "),
    (re.compile(r"([:,])([^\d])"), r" \1 \2"),
    (re.compile(r"([:,])$"), r" \1 "),
    (re.compile(r"\.{2,}"), r" \g<0> "),
    (re.compile(r"[;@#$%&]"), r" \g<0> "),
    (re.compile(r"[\u2012-\u2015]"), r" \g<0> "),
    (re.compile(r'([^\.])(\.)([\]\)}>"\']*)\s*$'), r"\1 \2\3 "),
    (re.compile(r"[?!]"), r" \g<0> "),
    (re.compile(r"[*]"), r" \g<0> "),
    (re.compile(r"[\]\[\(\)\{\}\<\>]"), r" \g<0> "),
    (re.compile(r"--"), r" -- "),
    (re.compile("([»”’])"), r" \1 "),
]
_CONTRACTIONS = [re.compile(p) for p in (
    r"(?i)\b(can)(?#X)(not)\b", r"(?i)\b(gim)(?#X)(me)\b", r"(?i)\b(gon)(?#X)(na)\b", r"(?i)\b(got)(?#X)(ta)\b",
    r"(?i)\b(lem)(?#X)(me)\b", r"(?i)\b(wan)(?#X)(na)(?=\s)")]


def word_tokenize(text: str) -> list[str]:
    """nltk's ``word_tokenize(text, preserve_line=True)`` for text without quote characters."""
    for pattern, replacement in _SPLITS:
        text = pattern.sub(replacement, text)
    text = f" {text} "
    for pattern in _CONTRACTIONS:
        text = pattern.sub(r" \1 \2 ", text)
    return text.split()


def official_tokens(sql: str) -> list[str]:
    text = str(sql).replace("'", '"')
    quotes = [i for i, ch in enumerate(text) if ch == '"']
    if len(quotes) % 2:
        raise OfficialParseError("odd number of quotes")
    values: dict[str, str] = {}
    for k in range(len(quotes) - 1, 0, -2):  # replace quoted spans from the end, keeping offsets valid
        start, end = quotes[k - 1], quotes[k]
        key = f"__val_{start}_{end}__"
        values[key] = text[start : end + 1]
        text = text[:start] + key + text[end + 1 :]
    toks = [values.get(w.lower(), w.lower()) for w in word_tokenize(text)]
    for i in reversed([i for i, t in enumerate(toks) if t == "="]):
        if toks[i - 1] in ("!", ">", "<"):
            toks[i - 1 : i + 1] = [toks[i - 1] + "="]
    return toks


class _Reader:
    """Recursive descent over the official grammar; every failure raises OfficialParseError."""

    def __init__(self, toks: list[str], columns: dict[str, list[str]]):
        self.toks = toks
        self.columns = columns  # table -> columns, lower case
        self.aliases = self._aliases()
        self.raw_values = 0  # > 0 inside a FROM subquery, whose values the official matching compares

    def tok(self, i: int) -> str:
        if i >= len(self.toks):
            raise OfficialParseError("unexpected end of query")
        return self.toks[i]

    def at(self, i: int, *words: str) -> bool:
        return i < len(self.toks) and self.toks[i] in words

    def expect(self, i: int, word: str) -> int:
        if self.tok(i) != word:
            raise OfficialParseError(f"expected {word!r} at token {i}, found {self.toks[i]!r}")
        return i + 1

    def _aliases(self) -> dict[str, str]:
        out = {}
        for i, t in enumerate(self.toks):
            if t == "as":
                out[self.tok(i + 1)] = self.toks[i - 1]
        for table in self.columns:
            if table in out:
                raise OfficialParseError(f"alias {table!r} has the name of a table")
            out[table] = table
        return out

    # --- columns and units -------------------------------------------------------------------
    def column(self, i: int, default_tables: list[str] | None) -> tuple[int, str]:
        t = self.tok(i)
        if t == "*":
            return i + 1, "*"
        if "." in t:
            parts = t.split(".")
            if len(parts) != 2 or parts[0] not in self.aliases:
                raise OfficialParseError(f"unknown column {t!r}")
            table = self.aliases[parts[0]]
            if parts[1] not in self.columns.get(table, ()):
                raise OfficialParseError(f"unknown column {t!r}")
            return i + 1, f"{table}.{parts[1]}"
        if not default_tables:
            raise OfficialParseError("column outside any FROM table")
        for name in default_tables:
            table = self.aliases[name]
            if t in self.columns.get(table, ()):
                return i + 1, f"{table}.{t}"
        raise OfficialParseError(f"unknown column {t!r}")

    def col_unit(self, i: int, default_tables) -> tuple[int, tuple]:
        block = self.tok(i) == "("
        if block:
            i += 1
        if self.tok(i) in AGGS:
            agg = self.tok(i)
            i = self.expect(i + 1, "(")
            distinct = self.tok(i) == "distinct"
            i, col = self.column(i + distinct, default_tables)
            i = self.expect(i, ")")
            return i, (agg, col, distinct)  # an opening block parenthesis is left unclosed, as officially
        distinct = self.tok(i) == "distinct"
        i, col = self.column(i + distinct, default_tables)
        if block:
            i = self.expect(i, ")")
        return i, ("none", col, distinct)

    def val_unit(self, i: int, default_tables) -> tuple[int, tuple]:
        block = self.tok(i) == "("
        if block:
            i += 1
        i, first = self.col_unit(i, default_tables)
        op, second = "none", None
        if self.at(i, *UNIT_OPS):
            op = self.toks[i]
            i, second = self.col_unit(i + 1, default_tables)
        if block:
            i = self.expect(i, ")")
        return i, (op, first, second)

    def value(self, i: int, default_tables) -> tuple[int, object]:
        start = i
        block = self.tok(i) == "("
        if block:
            i += 1
        val: object = None
        t = self.tok(i)
        if t == "select":
            i, val = self.query(i)
        elif '"' in t:
            val = t
            i += 1
        else:
            try:
                val = float(t)
                i += 1
            except ValueError:  # a column: read from the value's first token, up to a delimiter
                end = i  # (`or` is no delimiter: `ON a = b OR c = d` reads as `ON a = b`)
                while end < len(self.toks) and self.toks[end] not in (",", ")", "and", *CLAUSES, *JOIN_WORDS):
                    end += 1
                sub = _Reader.__new__(_Reader)
                sub.toks, sub.columns, sub.aliases = self.toks[start:end], self.columns, self.aliases
                val = sub.col_unit(0, default_tables)[1]
                i = end
        if block:
            i = self.expect(i, ")")
        # values are ignored, except nested queries and, as officially, anything inside a FROM subquery
        return i, val if isinstance(val, SpiderSQL) or self.raw_values else None

    def condition(self, i: int, default_tables) -> tuple[int, list]:
        conds: list = []
        while i < len(self.toks):
            i, unit = self.val_unit(i, default_tables)
            negated = self.tok(i) == "not"
            i += negated
            op = self.tok(i)
            if op not in WHERE_OPS:
                raise OfficialParseError(f"not a condition operator: {op!r}")
            i += 1
            val2 = None
            i, val1 = self.value(i, default_tables)
            if op == "between":
                i = self.expect(i, "and")
                i, val2 = self.value(i, default_tables)
            conds.append((negated, op, unit, val1, val2))
            if self.at(i, *CLAUSES, ")", ";", *JOIN_WORDS):
                break
            if self.at(i, *CONNECTORS):
                conds.append(self.toks[i])
                i += 1
        return i, conds

    # --- clauses -----------------------------------------------------------------------------
    def select(self, i: int, default_tables) -> tuple:
        i = self.expect(i, "select")
        distinct = self.at(i, "distinct")
        i += distinct
        items = []
        while i < len(self.toks) and self.toks[i] not in CLAUSES:
            agg = "none"
            if self.toks[i] in AGGS:
                agg = self.toks[i]
                i += 1
            i, unit = self.val_unit(i, default_tables)
            items.append((agg, unit))
            if self.at(i, ","):
                i += 1
        return distinct, items

    def from_clause(self, start: int) -> tuple[int, list, list, list[str]]:
        if "from" not in self.toks[start:]:
            raise OfficialParseError("no FROM")
        i = self.toks.index("from", start) + 1
        units: list = []
        conds: list = []
        default_tables: list[str] = []
        while i < len(self.toks):
            block = self.tok(i) == "("
            if block:
                i += 1
            if self.tok(i) == "select":
                self.raw_values += 1
                try:
                    i, sub = self.query(i)
                finally:
                    self.raw_values -= 1
                units.append(("sql", sub))
            else:
                if self.at(i, "join"):
                    i += 1
                name = self.aliases.get(self.tok(i))
                if name is None or name not in self.columns:
                    raise OfficialParseError(f"not a table: {self.tok(i)!r}")
                i += 3 if self.at(i + 1, "as") else 1
                units.append(("table", name))
                default_tables.append(name)
            if self.at(i, "on"):
                i, more = self.condition(i + 1, default_tables)
                if conds:
                    conds.append("and")
                conds.extend(more)
            if block:
                i = self.expect(i, ")")
            if self.at(i, *CLAUSES, ")", ";"):
                break
        return i, units, conds, default_tables

    def query(self, start: int) -> tuple[int, SpiderSQL]:
        i = start
        block = self.tok(i) == "("
        if block:
            i += 1
        end, units, from_conds, tables = self.from_clause(start)
        out = SpiderSQL(table_units=units, from_conds=from_conds)
        out.select = self.select(i, tables)
        i = end
        if self.at(i, "where"):
            i, out.where = self.condition(i + 1, tables)
        if self.at(i, "group"):
            i = self.expect(i + 1, "by")
            while i < len(self.toks) and self.toks[i] not in (*CLAUSES, ")", ";"):
                i, unit = self.col_unit(i, tables)
                out.group_by.append(unit)
                if not self.at(i, ","):
                    break
                i += 1
        if self.at(i, "having"):
            i, out.having = self.condition(i + 1, tables)
        if self.at(i, "order"):
            i = self.expect(i + 1, "by")
            direction, units_ = "asc", []
            while i < len(self.toks) and self.toks[i] not in (*CLAUSES, ")", ";"):
                i, unit = self.val_unit(i, tables)
                units_.append(unit)
                if self.at(i, *DIRECTIONS):
                    direction = self.toks[i]
                    i += 1
                if not self.at(i, ","):
                    break
                i += 1
            out.order_by = (direction, units_)
        if self.at(i, "limit"):
            i += 2
            self.tok(i - 1)  # the official reader looks at the token after LIMIT (fails at the end)
            out.has_limit = True
        i = self._semicolons(i)
        if block:
            i = self.expect(i, ")")
        i = self._semicolons(i)
        if self.at(i, *SET_OPS):
            op = self.toks[i]
            i, sub = self.query(i + 1)
            setattr(out, SET_OPS[op], sub)
        return i, out

    def _semicolons(self, i: int) -> int:
        while self.at(i, ";"):
            i += 1
        return i


def official_parse(sql: str, schema: Schema) -> SpiderSQL:
    """The query as the official reader reads it. Raises OfficialParseError where it cannot."""
    columns = schema_index(schema).columns
    try:
        reader = _Reader(official_tokens(sql), columns)
        return reader.query(0)[1]
    except OfficialParseError:
        raise
    except (IndexError, KeyError, ValueError, RecursionError) as e:  # defensive: any slip is a failure
        raise OfficialParseError(f"{type(e).__name__}: {e}") from e


def official_exact_match(gold_sql: str, pred_sql: str, schema: Schema) -> bool:
    """Exact match as the official evaluator scores it: the prediction (with ``" value "`` read as
    ``" 1 "``) is 0 wherever the official reader cannot read it. Raises OfficialParseError when it
    cannot read the *gold* (the official evaluator would stop there)."""
    gold = official_parse(gold_sql, schema)
    try:
        pred = official_parse(pred_sql.replace(" value ", " 1 "), schema)
    except OfficialParseError:
        return False
    return components_match(gold, pred, schema)
