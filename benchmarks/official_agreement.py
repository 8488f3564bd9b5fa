"""Agreement of t2s-bench's scorer with the official Spider evaluator, on Spider dev.

    python benchmarks/official_agreement.py --official-dir DIR [--exec] [--out results/official_agreement.json]

DIR is a folder the user provides (it is not part of this repository) holding the official
test-suite-sql-eval modules ``process_sql.py``, ``evaluation.py``, ``exec_eval.py`` and
``parse.py``; their dependencies (nltk, sqlparse) must be importable, e.g. installed into
``DIR/_vendor`` with ``pip install --target DIR/_vendor nltk sqlparse``. When nltk's punkt data is
absent, the official tokenizer is run with ``preserve_line=True`` (no sentence splitting: a SQL
query is one line), which is the only change made to the official behaviour.

Compared, per Spider dev example:
- hardness of every gold query (official: `Evaluator.eval_hardness` on `get_sql`);
- exact match verdicts, replaying the official `evaluate()` steps (" value " -> " 1 ", empty SQL
  for an unparsable prediction, value and foreign-key rebuilding, `eval_exact_match`);
- with --exec, execution verdicts (official `eval_exec_match`, plug_value off, keep_distinct off)
  against our `score_predictions` (workers=2).

Prediction sets: ``gold`` (each gold as its own prediction), ``swapped`` (the gold of the next
question on the same database), ``mutated`` (token- and AST-level edits of the gold: values,
ORDER direction, aggregates, DISTINCT, comparison operators, AND/OR, LIMIT, aliases, SELECT order,
join-key columns, dropped WHERE conditions), two spelling variants of the gold that mean the same
query (``sqlglot_rewrite``: sqlglot's SQLite output; ``no_as_alias``: `FROM singer T1`), which
measure where the official parser fails on valid SQL, plus any ``--pred-set NAME=FILE`` (one SQL
per line aligned with dev.json, or JSONL with index and pred_sql/sql).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import sqlglot
from sqlglot import exp
from sqlglot.tokens import TokenType

from t2s_bench.datasets import Dataset, Example, load_dataset
from t2s_bench.scoring import ExecMatchOptions, exact_match, hardness, score_predictions
from t2s_bench.scoring.official_parse import OfficialParseError, official_exact_match, official_parse
from t2s_bench.sql.components import UnsupportedSQL
from t2s_bench.sql.parse import SQLParseError, tokenize

MAX_EXAMPLES_PER_KIND = 25


# --- the official modules ------------------------------------------------------------------
class Official:
    def __init__(self, folder: Path, tables_json: Path):
        for p in (folder / "_vendor", folder):
            if p.is_dir():
                sys.path.insert(0, str(p))
        import nltk
        import process_sql

        try:
            nltk.word_tokenize("select a")
            self.tokenizer_shim = None
        except LookupError:  # punkt data absent (offline): tokenize without sentence splitting
            process_sql.word_tokenize = lambda s: nltk.word_tokenize(s, preserve_line=True)
            self.tokenizer_shim = "nltk.word_tokenize(preserve_line=True) (punkt data absent)"
        import evaluation

        self.ps, self.ev, self._xe = process_sql, evaluation, None
        self.kmaps = evaluation.build_foreign_key_map_from_json(str(tables_json))
        self.entries = {e["db_id"]: e for e in json.load(open(tables_json))}
        self._schemas: dict[str, object] = {}

    def schema(self, db_id: str, db_path: Path | None):
        if db_id not in self._schemas:
            if db_path is not None:
                raw = self.ps.get_schema(str(db_path))
            else:  # database file absent: the same dictionary from tables.json
                e = self.entries[db_id]
                raw = {t.lower(): [] for t in e["table_names_original"]}
                for t_idx, col in e["column_names_original"]:
                    if t_idx >= 0:
                        raw[e["table_names_original"][t_idx].lower()].append(col.lower())
            self._schemas[db_id] = self.ps.Schema(raw)
        return self._schemas[db_id]

    def hardness(self, sql: str, schema) -> str:
        return self.ev.Evaluator().eval_hardness(self.ps.get_sql(schema, sql))

    def exact(self, gold: str, pred: str, schema, db_id: str) -> tuple[bool | None, str | None]:
        """(verdict, note); verdict None when the official code crashes on the gold or in matching."""
        ev = self.ev
        try:
            g_sql = self.ps.get_sql(schema, gold)
        except Exception as e:
            return None, f"official parser fails on gold: {type(e).__name__}: {e}"
        note = None
        try:
            p_sql = self.ps.get_sql(schema, pred.replace(" value ", " 1 "))
        except Exception as e:
            p_sql = copy.deepcopy(EMPTY_SQL)
            note = f"official parser fails on pred: {type(e).__name__}: {e}"
        kmap = self.kmaps[db_id]
        try:
            g_valid = ev.build_valid_col_units(g_sql["from"]["table_units"], schema)
            g_sql = ev.rebuild_sql_col(g_valid, ev.rebuild_sql_val(g_sql), kmap)
            p_valid = ev.build_valid_col_units(p_sql["from"]["table_units"], schema)
            p_sql = ev.rebuild_sql_col(p_valid, ev.rebuild_sql_val(p_sql), kmap)
            return bool(ev.Evaluator().eval_exact_match(p_sql, g_sql)), note
        except Exception as e:
            return None, f"official matcher crashes: {type(e).__name__}: {e}"

    @property
    def xe(self):
        """exec_eval, imported on first use (only --exec needs it and its parse.py)."""
        if self._xe is None:
            import exec_eval

            self._xe = exec_eval
        return self._xe

    def exec(self, db_path: Path, gold: str, pred: str) -> tuple[bool | None, str | None]:
        try:
            return bool(self.xe.eval_exec_match(str(db_path), pred, gold, False, False, False)), None
        except Exception as e:
            return None, f"official exec crashes: {type(e).__name__}: {e}"


EMPTY_SQL = {
    "except": None, "from": {"conds": [], "table_units": []}, "groupBy": [], "having": [],
    "intersect": None, "limit": None, "orderBy": [], "select": [False, []], "union": None, "where": [],
}


# --- prediction sets -----------------------------------------------------------------------
def swapped_predictions(examples: list[Example]) -> list[tuple[Example, str, str]]:
    by_db: dict[str, list[Example]] = defaultdict(list)
    for ex in examples:
        by_db[ex.db_id].append(ex)
    out = []
    for ex in examples:
        group = by_db[ex.db_id]
        if len(group) > 1:
            other = group[(group.index(ex) + 1) % len(group)]
            out.append((ex, other.query, "swapped"))
    return out


def _replace_span(sql: str, start: int, end: int, text: str) -> str:
    return sql[:start] + text + sql[end + 1 :]


def token_mutations(sql: str) -> list[tuple[str, str]]:
    """Edits of the original text (format preserved, so the official parser sees gold-like SQL)."""
    try:
        toks = tokenize(sql)
    except SQLParseError:
        return []
    out = []

    def first(pred):
        return next((t for t in toks if pred(t)), None)

    t = first(lambda t: t.token_type == TokenType.NUMBER)
    if t is not None:
        try:
            out.append(("value", _replace_span(sql, t.start, t.end, str(int(float(t.text)) + 1))))
        except ValueError:
            pass
    t = first(lambda t: t.token_type == TokenType.STRING or (t.token_type == TokenType.IDENTIFIER and sql[t.start] == '"'))
    if t is not None and t.end > t.start:
        span = sql[t.start : t.end + 1]
        out.append(("value_string", _replace_span(sql, t.start, t.end, span[:-1] + "zq" + span[-1])))
    t = first(lambda t: t.token_type in (TokenType.DESC, TokenType.ASC))
    if t is not None:
        out.append(("order_dir", _replace_span(sql, t.start, t.end, "ASC" if t.token_type == TokenType.DESC else "DESC")))
    swaps = {"max": "min", "min": "max", "sum": "avg", "avg": "sum"}
    for i, t in enumerate(toks[:-1]):
        if t.text.lower() in swaps and toks[i + 1].token_type == TokenType.L_PAREN:
            out.append(("aggregate", _replace_span(sql, t.start, t.end, swaps[t.text.lower()])))
            break
    t = first(lambda t: t.token_type == TokenType.DISTINCT)
    if t is not None:
        out.append(("distinct_removed", _replace_span(sql, t.start, t.end, "")))
    else:
        t = first(lambda t: t.token_type == TokenType.SELECT)
        if t is not None:
            out.append(("distinct_added", _replace_span(sql, t.start, t.end, "SELECT DISTINCT")))
    flips = {">": "<", "<": ">", ">=": "<=", "<=": ">=", "=": "!="}
    t = first(lambda t: t.text in flips)
    if t is not None:
        out.append(("comparison", _replace_span(sql, t.start, t.end, flips[t.text])))
    in_between = False
    for t in toks:
        if t.token_type == TokenType.BETWEEN:
            in_between = True
        elif t.token_type == TokenType.AND:
            if in_between:
                in_between = False
                continue
            out.append(("and_or", _replace_span(sql, t.start, t.end, "OR")))
            break
    for i, t in enumerate(toks[:-1]):
        if t.token_type == TokenType.LIMIT and toks[i + 1].token_type == TokenType.NUMBER:
            n = toks[i + 1]
            out.append(("limit", _replace_span(sql, n.start, n.end, str(int(n.text) + 1))))
            break
    aliases = [t for t in toks if t.token_type == TokenType.VAR and t.text.upper() in ("T1", "T2", "T3", "T4")]
    if aliases:
        new = sql
        for t in reversed(aliases):
            new = _replace_span(new, t.start, t.end, "X" + t.text[1:])
        out.append(("alias_rename", new))
    return out


def ast_mutations(sql: str, official_ok) -> list[tuple[str, str]]:
    """Edits through sqlglot; kept only when the official parser reads sqlglot's output of the
    unchanged gold (so that a disagreement is about scoring, not about sqlglot's spelling)."""
    try:
        tree = sqlglot.parse_one(sql, read="sqlite")
    except Exception:
        return []
    if not isinstance(tree, exp.Select) or not official_ok(_emit(tree)):
        return []
    out = []
    if len(tree.expressions) > 1:
        t = tree.copy()
        t.set("expressions", list(reversed(t.expressions)))
        out.append(("select_order", _emit(t)))
    where = tree.args.get("where")
    if where is not None and isinstance(where.this, (exp.And, exp.Or)):
        t = tree.copy()
        t.args["where"].set("this", t.args["where"].this.this)
        out.append(("where_dropped", _emit(t)))
    for join in tree.args.get("joins") or []:
        on = join.args.get("on")
        if isinstance(on, exp.EQ) and all(isinstance(x, exp.Column) for x in (on.this, on.expression)):
            left = on.this.sql()
            t = tree.copy()
            hit = False
            for e in t.expressions:
                col = e.this if isinstance(e, exp.Alias) else e
                if isinstance(col, exp.Column) and col.sql() == left:
                    col.replace(on.expression.copy())
                    hit = True
                    break
            if hit:
                out.append(("join_key", _emit(t)))
            break
    return out


def _emit(tree: exp.Expression) -> str:
    """sqlglot's SQLite text with `!=` (the official tokenizer cannot read `<>`)."""
    text = tree.sql(dialect="sqlite")
    try:
        toks = tokenize(text)
    except SQLParseError:
        return text
    for t in reversed(toks):
        if t.token_type == TokenType.NEQ and text[t.start : t.end + 1] == "<>":
            text = _replace_span(text, t.start, t.end, "!=")
    return text


def drop_table_alias_as(sql: str) -> str:
    """`table AS T1` -> `table T1` (a spelling the official parser cannot read)."""
    try:
        toks = tokenize(sql)
    except SQLParseError:
        return sql
    out = sql
    for i in range(len(toks) - 2, 0, -1):
        prev, t, nxt = toks[i - 1], toks[i], toks[i + 1]
        if t.token_type == TokenType.ALIAS and prev.token_type == TokenType.VAR and nxt.text.upper().startswith("T") \
                and nxt.text[1:].isdigit():
            out = out[: prev.end + 1] + out[t.end + 1 :]
    return out


def load_pred_set(path: Path, n: int) -> dict[int, str]:
    """A run directory (predictions.jsonl[.gz], packed or not), a JSONL file, or one SQL a line."""
    if path.is_dir():
        from t2s_bench.rundir import RunDir

        return {i: (r.get("sql") or "") for i, r in RunDir(path).read_predictions().items()}
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        out = {}
        for line in text.splitlines():
            if line.strip():
                r = json.loads(line)
                out[int(r["index"])] = r.get("pred_sql", r.get("sql", "")) or ""
        return out
    lines = text.splitlines()
    return {i: lines[i].split("\t")[0].strip() for i in range(min(n, len(lines)))}


# --- comparison ----------------------------------------------------------------------------
def ours_official_exact(gold: str, pred: str, schema) -> tuple[bool | None, str | None]:
    """t2s-bench's official-compatible exact match (its model of the official reader)."""
    try:
        official_parse(pred.replace(" value ", " 1 "), schema)
        note = None
    except OfficialParseError as e:
        note = f"model of the official reader fails on pred: {e}"
    try:
        return official_exact_match(gold, pred, schema), note
    except OfficialParseError as e:
        return None, f"model of the official reader fails on gold: {e}"


def ours_exact(gold: str, pred: str, schema) -> tuple[bool | None, str | None]:
    try:
        return exact_match(gold, pred, schema), None
    except (SQLParseError, UnsupportedSQL) as e:
        return None, f"ours cannot decompose gold: {e}"


def compare(pairs, official: Official, dataset: Dataset, do_exec: bool, workers: int) -> dict:
    """pairs: list of (example, pred_sql, kind)."""
    exact = Counter()
    examples = defaultdict(list)

    def note(kind, item):
        if len(examples[kind]) < MAX_EXAMPLES_PER_KIND:
            examples[kind].append(item)

    by_kind = defaultdict(Counter)
    compat = Counter()  # the official-compatible exact match against the official verdict
    for ex, pred, kind in pairs:
        schema = dataset.schema(ex.db_id)
        off_schema = official.schema(ex.db_id, dataset.db_path(ex.db_id))
        off, off_note = official.exact(ex.query, pred, off_schema, ex.db_id)
        ours, ours_note = ours_exact(ex.query, pred, schema)
        exact["n"] += 1
        by_kind[kind]["n"] += 1
        if off is not None:
            mine, mine_note = ours_official_exact(ex.query, pred, schema)
            compat["n"] += 1
            if mine is None:
                compat["undecided"] += 1
            else:
                compat["agree"] += mine == off
                compat[f"ours_{mine}_official_{off}"] += 1
                if mine != off:
                    note("exact_official_disagree", {"index": ex.index, "kind": kind, "gold": ex.query, "pred": pred,
                                                     "ours_official": mine, "official": off,
                                                     "official_note": off_note, "ours_note": mine_note})
        if off is not None and ours is not None and off_note is None:  # the official parser reads it
            exact["read_by_official"] += 1
            exact["read_agree"] += ours == off
        if off is None or ours is None:
            exact["undecided"] += 1
            note("exact_undecided", {"index": ex.index, "kind": kind, "gold": ex.query, "pred": pred, "ours": ours,
                                     "official": off, "note": off_note or ours_note})
            continue
        exact["agree"] += ours == off
        by_kind[kind]["agree"] += ours == off
        exact[f"ours_{ours}_official_{off}"] += 1
        if ours != off:
            note("exact_disagree", {"index": ex.index, "kind": kind, "gold": ex.query, "pred": pred, "ours": ours,
                                    "official": off, "note": off_note})
    result = {"exact": {**dict(exact), "by_kind": {k: dict(v) for k, v in sorted(by_kind.items())}},
              "exact_official": dict(compat)}

    if do_exec:
        runnable = [(ex, pred, kind) for ex, pred, kind in pairs if dataset.db_path(ex.db_id) is not None]
        synthetic = Dataset(
            "agreement",
            [Example(i, ex.db_id, ex.question, ex.query) for i, (ex, _, _) in enumerate(runnable)],
            dataset.schemas,
            dataset.db_dir,
        )
        t0 = time.perf_counter()
        records = score_predictions(synthetic, {i: p for i, (_, p, _) in enumerate(runnable)}, workers=workers,
                                    timeout=30.0, options=ExecMatchOptions(), gold_cache=None)
        ours_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        ex_counts, ex_kind = Counter(), defaultdict(Counter)
        for (ex, pred, kind), rec in zip(runnable, records):
            off, off_note = official.exec(dataset.db_path(ex.db_id), ex.query, pred)
            ours = rec["exec_match"]
            ex_counts["n"] += 1
            ex_kind[kind]["n"] += 1
            if off is None or ours is None:
                ex_counts["undecided"] += 1
                note("exec_undecided", {"index": ex.index, "kind": kind, "gold": ex.query, "pred": pred,
                                        "ours": ours, "official": off, "note": off_note or rec["skipped"]})
                continue
            ex_counts["agree"] += ours == off
            ex_kind[kind]["agree"] += ours == off
            ex_counts[f"ours_{ours}_official_{off}"] += 1
            if ours != off:
                note("exec_disagree", {"index": ex.index, "kind": kind, "gold": ex.query, "pred": pred, "ours": ours,
                                       "official": off, "pred_error": rec["pred_error"]})
        result["exec"] = {**dict(ex_counts), "by_kind": {k: dict(v) for k, v in sorted(ex_kind.items())},
                          "ours_seconds": round(ours_s, 2), "official_seconds": round(time.perf_counter() - t0, 2)}
    result["examples"] = dict(examples)
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--official-dir", required=True, type=Path)
    ap.add_argument("--dataset", default="spider-dev")
    ap.add_argument("--exec", action="store_true", help="also compare execution verdicts (slower)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--pred-set", action="append", default=[], metavar="NAME=FILE")
    ap.add_argument("--sets", default="gold,swapped,mutated,sqlglot_rewrite,no_as_alias")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--out", type=Path, default=Path("results/official_agreement.json"))
    args = ap.parse_args(argv)

    t_start = time.perf_counter()
    dataset = load_dataset(args.dataset)
    if args.limit:
        dataset = dataset.filter(limit=args.limit)
    tables = dataset.db_dir.parent / "tables.json"
    official = Official(args.official_dir.resolve(), tables)

    # hardness of every gold query
    h_agree, h_off, h_ours, h_bad = 0, Counter(), Counter(), []
    for ex in dataset.examples:
        off = official.hardness(ex.query, official.schema(ex.db_id, dataset.db_path(ex.db_id)))
        ours = hardness(ex.query, dataset.schema(ex.db_id))
        h_off[off] += 1
        h_ours[ours] += 1
        h_agree += off == ours
        if off != ours and len(h_bad) < MAX_EXAMPLES_PER_KIND:
            h_bad.append({"index": ex.index, "gold": ex.query, "ours": ours, "official": off})
    report = {
        "dataset": args.dataset,
        "official": {
            "source": "taoyds/test-suite-sql-eval: evaluation.py, exec_eval.py, process_sql.py, parse.py",
            "tokenizer_shim": official.tokenizer_shim,
        },
        "hardness": {"n": len(dataset.examples), "agree": h_agree, "official_counts": dict(h_off),
                     "ours_counts": dict(h_ours), "disagreements": h_bad},
        "sets": {},
    }
    print(f"hardness: {h_agree}/{len(dataset.examples)} agree; official {dict(h_off)}", flush=True)

    def official_ok(sql: str) -> bool:
        ex_db = current_db[0]
        try:
            official.ps.get_sql(official.schema(ex_db, dataset.db_path(ex_db)), sql)
            return True
        except Exception:
            return False

    current_db = [""]
    sets: dict[str, list] = {}
    wanted = args.sets.split(",") if args.sets else []
    if "gold" in wanted:
        sets["gold"] = [(ex, ex.query, "gold") for ex in dataset.examples]
    if "swapped" in wanted:
        sets["swapped"] = swapped_predictions(dataset.examples)
    if "mutated" in wanted:
        pairs = []
        for ex in dataset.examples:
            current_db[0] = ex.db_id
            for kind, sql in token_mutations(ex.query) + ast_mutations(ex.query, official_ok):
                pairs.append((ex, sql, kind))
        sets["mutated"] = pairs
    if "sqlglot_rewrite" in wanted:  # same query, sqlglot's spelling (e.g. `<>`, `NOT x IN (...)`)
        sets["sqlglot_rewrite"] = [(ex, sqlglot.parse_one(ex.query, read="sqlite").sql(dialect="sqlite"), "sqlglot_rewrite")
                                   for ex in dataset.examples]
    if "no_as_alias" in wanted:  # same query, table aliases written without AS (`FROM singer T1`)
        sets["no_as_alias"] = [(ex, drop_table_alias_as(ex.query), "no_as_alias") for ex in dataset.examples
                               if drop_table_alias_as(ex.query) != ex.query]
    for spec in args.pred_set:
        name, _, path = spec.partition("=")
        preds = load_pred_set(Path(path), len(dataset.examples))
        sets[name] = [(ex, preds[ex.index], name) for ex in dataset.examples if ex.index in preds]

    for name, pairs in sets.items():
        t0 = time.perf_counter()
        res = compare(pairs, official, dataset, args.exec, args.workers)
        res["seconds"] = round(time.perf_counter() - t0, 2)
        report["sets"][name] = res
        e, c = res["exact"], res["exact_official"]
        line = (f"{name}: exact (corrected) {e.get('agree', 0)}/{e['n'] - e.get('undecided', 0)} agree, "
                f"{e.get('read_agree', 0)}/{e.get('read_by_official', 0)} where the official parser reads the pred; "
                f"official-compatible {c.get('agree', 0)}/{c.get('n', 0) - c.get('undecided', 0)} agree")
        if "exec" in res:
            x = res["exec"]
            line += f"; exec {x.get('agree', 0)}/{x['n'] - x.get('undecided', 0)} agree"
        print(line, flush=True)
    if not args.exec and args.out.is_file():  # keep the execution comparison of an earlier --exec run
        earlier = json.loads(args.out.read_text(encoding="utf-8")).get("sets", {})
        for name, res in report["sets"].items():
            if "exec" in earlier.get(name, {}):
                res["exec"] = {**earlier[name]["exec"], "note": "carried over from an earlier --exec run"}
    report["seconds"] = round(time.perf_counter() - t_start, 2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, default=str) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
