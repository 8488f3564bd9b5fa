"""Spider's partial-match table: accuracy, recall and F1 of each SQL component, by hardness.

Reimplemented on the exact-match machinery (`SpiderSQL` components, foreign-key and DISTINCT
normalisation of `exact_match`), with the definitions of the official evaluator
(test-suite-sql-eval's evaluation.py, `eval_partial_match` and the printed table):

Per example and component the gold and the prediction give a ``label_total``, a ``pred_total`` and
a count of matched units; the component scores 1 (acc = rec = F1 = 1) when both totals are equal
and every predicted unit matched, else 0. Components:

- ``select``: (aggregate, value unit) pairs, as a multiset; ``select(no AGG)``: value units only;
- ``where``: condition units (negation, operator, value unit, nested query); ``where(no OP)``: their
  value units only;
- ``group(no Having)``: GROUP BY column names (table prefix dropped); ``group``: 1 on each side that
  groups, matched when the columns (in order) and the HAVING conditions are equal;
- ``order``: 1 on each side with ORDER BY, matched when direction, expressions and "LIMIT present"
  are equal;
- ``and/or``: the sets of WHERE connectors; equal sets give 1/1/1, otherwise the official code
  returns the prediction's set size as ``label_total`` and the gold's as ``pred_total`` (sic: it
  decides which example counts for accuracy and which for recall, so it is kept);
- ``IUEN``: INTERSECT / EXCEPT / UNION operands present, matched by exact-set match;
- ``keywords``: the clause keywords of `exact_match.keywords`, matched as sets.

Aggregation over a hardness level: accuracy averages the component score over the examples whose
prediction has the component (``pred_total > 0``), recall over those whose gold has it
(``label_total > 0``); F1 = 2·acc·rec / (acc + rec), and 1 when both are 0 (official rule).
A prediction that does not parse or falls outside Spider's grammar is the empty query (officially too).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from t2s_bench.datasets.schema import Schema
from t2s_bench.scoring.exact_match import _match, _rebuild, foreign_key_map, keywords
from t2s_bench.scoring.hardness import LEVELS
from t2s_bench.scoring.metrics import TableMetric
from t2s_bench.scoring.official_parse import OfficialParseError, official_parse
from t2s_bench.sql.components import SpiderSQL, UnsupportedSQL, extract
from t2s_bench.sql.parse import SQLParseError

COMPONENTS = ("select", "select(no AGG)", "where", "where(no OP)", "group(no Having)", "group", "order",
              "and/or", "IUEN", "keywords")
FIELD = "partial_match"  # score-record key: {component: {acc, rec, f1, label_total, pred_total}}


def partial_match(gold_sql: str, pred_sql: str, schema: Schema) -> dict[str, dict[str, int]]:
    """Per-component scores of one prediction. Raises SQLParseError / UnsupportedSQL when the *gold*
    cannot be decomposed; an unreadable prediction is scored as the empty query."""
    gold = extract(gold_sql, schema, strict=True)
    try:
        pred = extract(pred_sql, schema, strict=True)
    except (SQLParseError, UnsupportedSQL):
        pred = SpiderSQL()
    return component_scores(gold, pred, schema)


def partial_match_official(gold_sql: str, pred_sql: str, schema: Schema) -> dict[str, dict[str, int]]:
    """The same table as the official evaluator fills it: both queries read by the model of the official
    parser (`scoring/official_parse.py`), so SQL it cannot read (``INNER JOIN``, ``NOT x IN``, aliases
    without ``AS``) is the empty query, as in published tables. Raises OfficialParseError for the gold."""
    gold = official_parse(gold_sql, schema)
    try:
        pred = official_parse(pred_sql.replace(" value ", " 1 "), schema)
    except OfficialParseError:
        pred = SpiderSQL()
    return component_scores(gold, pred, schema)


def component_scores(gold: SpiderSQL, pred: SpiderSQL, schema: Schema | None) -> dict[str, dict[str, int]]:
    kmap = foreign_key_map(schema)
    gold, pred = _rebuild(gold, kmap, schema), _rebuild(pred, kmap, schema)
    counts = {}
    label_total, pred_total, cnt, cnt_wo_agg = _units(gold.select[1], pred.select[1], lambda u: u[1])
    counts["select"] = (label_total, pred_total, cnt)
    counts["select(no AGG)"] = (label_total, pred_total, cnt_wo_agg)
    label_total, pred_total, cnt, cnt_wo_op = _units(gold.where[::2], pred.where[::2], lambda u: u[2])
    counts["where"] = (label_total, pred_total, cnt)
    counts["where(no OP)"] = (label_total, pred_total, cnt_wo_op)
    counts["group(no Having)"] = _group_columns(gold, pred)
    counts["group"] = _group_having(gold, pred)
    counts["order"] = _order(gold, pred)
    counts["and/or"] = _and_or(gold, pred)
    counts["IUEN"] = _iuen(gold, pred)
    gold_kw, pred_kw = keywords(gold), keywords(pred)
    counts["keywords"] = (len(gold_kw), len(pred_kw), len(pred_kw & gold_kw))
    out = {}
    for name in COMPONENTS:
        label_total, pred_total, cnt = counts[name]
        score = int(pred_total == label_total and cnt == pred_total)
        out[name] = {"acc": score, "rec": score, "f1": score, "label_total": label_total, "pred_total": pred_total}
    return out


def _units(gold_units: list, pred_units: list, part) -> tuple[int, int, int, int]:
    """(label_total, pred_total, matched units, matched parts): each gold unit matches once."""
    left, left_parts = list(gold_units), [part(u) for u in gold_units]
    cnt = cnt_part = 0
    for unit in pred_units:
        if unit in left:
            cnt += 1
            left.remove(unit)
        if part(unit) in left_parts:
            cnt_part += 1
            left_parts.remove(part(unit))
    return len(gold_units), len(pred_units), cnt, cnt_part


def _group_columns(gold: SpiderSQL, pred: SpiderSQL) -> tuple[int, int, int]:
    def names(sql):
        return [cu[1].split(".")[1] if "." in cu[1] else cu[1] for cu in sql.group_by]

    left, cnt = names(gold), 0
    for col in names(pred):
        if col in left:
            cnt += 1
            left.remove(col)
    return len(gold.group_by), len(pred.group_by), cnt


def _group_having(gold: SpiderSQL, pred: SpiderSQL) -> tuple[int, int, int]:
    label_total, pred_total = int(bool(gold.group_by)), int(bool(pred.group_by))
    same = [c[1] for c in gold.group_by] == [c[1] for c in pred.group_by] and gold.having == pred.having
    return label_total, pred_total, int(label_total == pred_total == 1 and same)


def _order(gold: SpiderSQL, pred: SpiderSQL) -> tuple[int, int, int]:
    label_total, pred_total = int(gold.order_by is not None), int(pred.order_by is not None)
    same = gold.order_by is not None and gold.order_by == pred.order_by and gold.has_limit == pred.has_limit
    return label_total, pred_total, int(same)


def _and_or(gold: SpiderSQL, pred: SpiderSQL) -> tuple[int, int, int]:
    gold_ao, pred_ao = set(gold.where[1::2]), set(pred.where[1::2])
    if gold_ao == pred_ao:
        return 1, 1, 1
    return len(pred_ao), len(gold_ao), 0  # the official order (see the module docstring)


def _iuen(gold: SpiderSQL, pred: SpiderSQL) -> tuple[int, int, int]:
    label_total = pred_total = cnt = 0
    pred_ops = pred.set_ops()
    for name, g_sub in gold.set_ops().items():
        p_sub = pred_ops[name]
        label_total += g_sub is not None
        pred_total += p_sub is not None
        if g_sub is not None and p_sub is not None:
            cnt += _match(g_sub, p_sub)
    return label_total, pred_total, cnt


# --- aggregation ---------------------------------------------------------------------------
def summarize_partial(records: Sequence[Mapping], field: str = FIELD) -> dict:
    """{level: {component: {acc, rec, f1, n_acc, n_rec}} | None}; levels as in `summarize`.

    Only records with partial scores whose exact match was scored count (an example without a
    prediction because its database is missing is left out, as for exact match)."""
    scored = [r for r in records if isinstance(r.get(field), Mapping) and r.get("exact_match") in (True, False)]
    out: dict = {}
    for level in (*LEVELS, "all"):
        recs = [r for r in scored if level == "all" or r.get("hardness") == level]
        out[level] = _aggregate([r[field] for r in recs]) if recs else None
    out["n"] = len(scored)
    return out


def _aggregate(per_example: list[Mapping]) -> dict:
    table = {}
    for name in COMPONENTS:
        acc_sum = rec_sum = n_acc = n_rec = 0
        for scores in per_example:
            s = scores[name]
            if s["pred_total"] > 0:
                acc_sum, n_acc = acc_sum + s["acc"], n_acc + 1
            if s["label_total"] > 0:
                rec_sum, n_rec = rec_sum + s["rec"], n_rec + 1
        acc = acc_sum / n_acc if n_acc else 0.0
        rec = rec_sum / n_rec if n_rec else 0.0
        f1 = 1.0 if acc == 0 and rec == 0 else 2.0 * acc * rec / (acc + rec)
        table[name] = {"acc": acc, "rec": rec, "f1": f1, "n_acc": n_acc, "n_rec": n_rec}
    return table


def format_partial(summary: Mapping) -> str:
    """The official evaluator's three partial-matching blocks (accuracy, recall, F1)."""
    levels = [*LEVELS, "all"]

    def line(name, values):
        return f"{name:20} " + " ".join("-".ljust(20) if v is None else f"{v:<20.3f}" for v in values)

    out = []
    for title, key in (("---------------------PARTIAL MATCHING ACCURACY----------------------", "acc"),
                       ("---------------------- PARTIAL MATCHING RECALL ----------------------", "rec"),
                       ("---------------------- PARTIAL MATCHING F1 --------------------------", "f1")):
        out.append(title)
        for name in COMPONENTS:
            out.append(line(name, [summary[lv][name][key] if summary.get(lv) else None for lv in levels]))
    return "\n".join(out)


def record_partial(record: Mapping, schema: Schema | None) -> dict | None:
    """The metric seam's per-example function: None when the gold cannot be decomposed."""
    if schema is None or not record.get("gold"):
        return None
    try:
        return partial_match(record["gold"], record.get("pred") or "", schema)
    except (SQLParseError, UnsupportedSQL):
        return None


PARTIAL_MATCH = TableMetric(
    name="partial", field=FIELD, label="Partial match",
    description="per SQL component accuracy, recall and F1 (official evaluator's partial matching)",
    fn=record_partial, summarize=summarize_partial, format=format_partial,
)


FIELD_OFFICIAL = "partial_match_official"


def record_partial_official(record: Mapping, schema: Schema | None) -> dict | None:
    """Per-example scores as the official evaluator gives them; None when the gold is unreadable to it."""
    if schema is None or not record.get("gold"):
        return None
    try:
        return partial_match_official(record["gold"], record.get("pred") or "", schema)
    except OfficialParseError:
        return None


def format_partial_official(summary: Mapping) -> str:
    return ("==================== PARTIAL MATCHING, OFFICIAL-COMPATIBLE (as published tables) ====================\n"
            + format_partial(summary))


PARTIAL_MATCH_OFFICIAL = TableMetric(
    name="partial_official", field=FIELD_OFFICIAL, label="Partial match (official-compatible)",
    description="the partial-match table as the official evaluator fills it: SQL its parser cannot read "
                "counts as the empty query",
    fn=record_partial_official, summarize=lambda records: summarize_partial(records, FIELD_OFFICIAL),
    format=format_partial_official,
)
