"""Reports: one self-contained HTML file (Jinja, inline CSS/JS/SVG), a Markdown table, or JSON.

`render_report(runs, out_path, baseline=..., fmt="html"|"md"|"json")` for benchmark runs;
`render_dataset_report(stats, out_path)` for `t2s-bench data stats` output.
Example data for the browser is embedded once as JSON and drawn page by page in the browser.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import math
from functools import lru_cache
from pathlib import Path

import jinja2
import sqlglot
from markupsafe import Markup
from sqlglot.errors import TokenError
from sqlglot.tokens import TokenType

from t2s_bench.reporting import analysis as an
from t2s_bench.reporting import charts
from t2s_bench.scoring.errors import ERROR_CLASSES
from t2s_bench.scoring.hardness import LEVELS as HARDNESS_LEVELS
from t2s_bench.scoring.metrics import all_metrics, table_metrics

TEMPLATES = Path(__file__).parent / "templates"
FORMATS = ("html", "md", "json")
LEVELS = [*HARDNESS_LEVELS, "overall"]
BROWSER_ROWS = 5  # result rows per example embedded for the browser
BROWSER_CELL_CHARS = 80

_PLAIN = {TokenType.VAR, TokenType.IDENTIFIER, TokenType.STRING, TokenType.NUMBER}


# ---------------------------------------------------------------- SQL highlighting


def highlight_sql(sql: str | None) -> Markup:
    """SQL as escaped HTML with <span class=k|f|s|n|i> around keywords, functions, strings, numbers,
    quoted identifiers (sqlglot's tokenizer; text between tokens is kept verbatim, escaped)."""
    return Markup(_highlight(sql if isinstance(sql, str) else ""))


@lru_cache(maxsize=50_000)
def _highlight(sql: str) -> str:
    try:
        tokens = sqlglot.tokenize(sql, read="sqlite")
    except (TokenError, ValueError):
        return html.escape(sql)
    parts, pos = [], 0
    for i, tok in enumerate(tokens):
        start, end = tok.start, tok.end + 1
        if start < pos or end > len(sql):  # offsets out of step (should not happen): stop highlighting
            break
        parts.append(html.escape(sql[pos:start]))
        text = html.escape(sql[start:end])
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if tok.token_type == TokenType.STRING:
            cls = "s"
        elif tok.token_type == TokenType.NUMBER:
            cls = "n"
        elif tok.token_type == TokenType.IDENTIFIER:
            cls = "i"
        elif tok.token_type == TokenType.VAR:
            cls = "f" if nxt is not None and nxt.token_type == TokenType.L_PAREN else ""
        else:
            cls = "k" if tok.text.replace(" ", "").replace("_", "").isalpha() else ""
        parts.append(f'<span class="{cls}">{text}</span>' if cls else text)
        pos = end
    parts.append(html.escape(sql[pos:]))
    return "".join(parts)


# ---------------------------------------------------------------- formatting helpers


def _pct(v) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.1f}"


def _ci(cell: dict) -> str:
    if cell.get("low") is None:
        return ""
    return f"[{100 * cell['low']:.1f}, {100 * cell['high']:.1f}]"


def _p(v) -> str:
    if v is None:
        return "–"
    return "<0.001" if v < 0.001 else f"{v:.3f}"


def _signed(v, scale=100, digits=1) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{scale * v:+.{digits}f}"


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(pct=_pct, ci=_ci, p=_p, signed=_signed, sql=highlight_sql)
    env.globals["json_script"] = json_script
    return env


def json_script(data, element_id: str) -> Markup:
    """Data as <script type="application/json">, safe against </script> and HTML in strings."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str, allow_nan=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return Markup(f'<script type="application/json" id="{html.escape(element_id)}">{text}</script>')


def _clean(obj):
    """NaN/inf -> None, numpy scalars -> Python, recursively (for JSON)."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


# ---------------------------------------------------------------- report data


def report_data(runs: list[an.Run], *, baseline: str | None = None, n_resamples: int = 2000, seed: int = 0) -> dict:
    """Everything a report shows, as plain data (the JSON format is exactly this)."""
    if not runs:
        raise ValueError("no runs to report")
    ci = {"n_resamples": n_resamples, "seed": seed}
    baseline = baseline or runs[0].name
    own = an.summary(runs, **ci) if len(runs) > 1 else None
    runs, questions = an.common_questions(runs)
    question_notes = []
    if questions["left_out"]:
        sizes = ", ".join(f"{k}: {v}" for k, v in questions["per_run"].items())
        question_notes.append(
            f"The runs cover different questions ({sizes}); every table compares the {questions['n_common']} "
            "questions all of them scored (paired). Left out per run: "
            + "; ".join(f"{k}: {len(v)}{'+' if len(v) == 50 else ''} (e.g. {v[:5]})" for k, v in questions["left_out"].items())
            + ". Each run's overall EX over its own questions: "
            + ", ".join(f"{row['system']} {_pct(row['cells']['overall']['exec']['accuracy'])}% of "
                        f"{row['cells']['overall']['exec']['n']}" for row in own or []) + ".")
    summary = an.summary(runs, **ci)
    comparisons = an.compare_to_baseline(runs, baseline, **ci) if len(runs) > 1 else []
    dist = an.error_distribution(runs)
    breakdowns = {}
    for name in an.available_breakdowns(runs):
        df = an.breakdown(runs, name)
        if not df.empty:
            breakdowns[name] = {"title": an.BREAKDOWNS[name][0],
                                "rows": _clean(df.assign(group=df["group"].astype(str)).to_dict("records"))}
    return _clean({
        "systems": [r.name for r in runs],
        "metrics": [{"name": m.name, "label": m.label, "description": m.description or m.name}
                    for m in all_metrics() if _defined_in_some_run(m, runs)],
        "baseline": baseline,
        "statistics": {"confidence": 0.95, "bootstrap_resamples": n_resamples, "seed": seed,
                       "paired_test": "McNemar exact (two-sided binomial on discordant pairs)"},
        "summary": summary,
        "comparisons": comparisons,
        "errors": {"counts": dist.to_dict("index"), "classes": list(dist.columns)},
        "breakdowns": breakdowns,
        "tables": table_summaries(runs),
        "questions": questions,
        "notes": question_notes + sorted({n for r in runs for n in r.notes}),
    })


def _defined_in_some_run(metric, runs: list[an.Run]) -> bool:
    """Every metric, except an optional one (e.g. linking recall, only for pruned-schema runs) that no
    run has a verdict for: reports of full-schema runs keep their columns."""
    if not metric.optional:
        return True
    return any(metric.field in r.records.columns and r.records[metric.field].notna().any() for r in runs)


def table_summaries(runs: list[an.Run]) -> list[dict]:
    """Each table metric's summary (e.g. partial match by component and hardness) for each run that
    has its per-example values."""
    out = []
    for table in table_metrics():
        per_run = {r.name: table.summarize(r.records.to_dict("records")) for r in runs if table.field in r.records}
        if per_run:
            out.append({"name": table.name, "label": table.label, "description": table.description, "runs": per_run})
    return out


def _wide_breakdown(rows: list[dict], systems: list[str]) -> dict:
    """Long breakdown rows -> {groups: [...], cells: {group: {system: row}}} for the template."""
    groups = list(dict.fromkeys(r["group"] for r in rows))
    cells: dict = {g: {} for g in groups}
    for r in rows:
        cells[r["group"]][r["system"]] = r
    return {"groups": groups, "cells": cells, "systems": systems}


def _trim_result(result) -> dict | None:
    if not isinstance(result, dict):
        return None
    rows = result.get("rows") or []
    trimmed = [[_cell(v) for v in row] for row in rows[:BROWSER_ROWS]]
    return {"c": [str(c) for c in result.get("columns") or []], "r": trimmed,
            "n": result.get("n_rows", len(rows))}


def _cell(v):
    if isinstance(v, str) and len(v) > BROWSER_CELL_CHARS:
        return v[: BROWSER_CELL_CHARS - 1] + "…"
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


def browser_data(runs: list[an.Run]) -> dict:
    """Compact example data: one entry per example, predictions per system; SQL pre-highlighted."""
    systems = [r.name for r in runs]
    tables = [{rec["index"]: rec for rec in r.records[an.RECORD_FIELDS].to_dict("records")} for r in runs]
    all_index = sorted(set().union(*[set(t) for t in tables]))
    examples = []
    for idx in all_index:
        first = next(t[idx] for t in tables if idx in t)
        preds = []
        for s, table in enumerate(tables):
            rec = table.get(idx)
            if rec is None:
                continue
            preds.append([
                s, _highlight(rec["pred"] or ""), _tri(rec["exec_match"]), _tri(rec["exact_match"]),
                rec["error_class"] or "", rec["error_reason"] or "", _trim_result(rec["pred_result"]),
                rec["pred_error"] or "",
            ])
        examples.append({"i": int(idx), "db": first["db_id"], "q": first["question"] or "", "h": first["hardness"],
                         "g": _highlight(first["gold"] or ""), "gr": _trim_result(first["gold_result"]), "p": preds})
    classes = [c for c in ERROR_CLASSES if any((r.records["error_class"] == c).any() for r in runs)]
    return {"systems": systems, "classes": classes, "levels": an.HARDNESS_LEVELS + ["unknown"],
            "examples": _clean(examples)}


def _tri(v):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return 1 if bool(v) else 0


# ---------------------------------------------------------------- renderers


def render_report(runs: list[an.Run], out_path: str | Path, *, baseline: str | None = None, fmt: str = "html",
                  title: str | None = None, n_resamples: int = 2000, seed: int = 0,
                  case_studies_per_class: int = 2) -> Path:
    """Write a report of the runs in the given format; returns the path written."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: use one of {FORMATS}")
    data = report_data(runs, baseline=baseline, n_resamples=n_resamples, seed=seed)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "json":
        text = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False)
    elif fmt == "md":
        text = markdown_table(data)
    else:
        text = _html_report(runs, data, title=title, per_class=case_studies_per_class)
    out_path.write_text(text, encoding="utf-8")
    return out_path


def markdown_table(data: dict) -> str:
    """README results table: execution accuracy per hardness with 95% CI, exact match overall,
    then one overall column per extra registered metric."""
    extras = [m for m in data.get("metrics", []) if m["name"] not in ("exec", "exact")]
    lines = [
        "| System | Easy | Medium | Hard | Extra | Overall EX | Overall EM |"
        + "".join(f" Overall {_md(m['label'])} |" for m in extras) + " n |",
        "|---|---:|---:|---:|---:|---:|---:|" + "---:|" * len(extras) + "---:|",
    ]
    for row in data["summary"]:
        cells = row["cells"]
        ex = [f"{_pct(cells[lv]['exec']['accuracy'])}" for lv in LEVELS[:-1]]
        overall = cells["overall"]
        lines.append(
            f"| {_md(row['system'])} | " + " | ".join(ex)
            + f" | **{_pct(overall['exec']['accuracy'])}** {_ci(overall['exec'])}"
            + f" | {_pct(overall['exact']['accuracy'])} {_ci(overall['exact'])} |"
            + "".join(f" {_pct(overall[m['name']]['accuracy'])} |" for m in extras)
            + f" {overall['exec']['n']} |"
        )
    out = "\n".join(lines) + "\n"
    if data["comparisons"]:
        out += f"\nAgainst the baseline `{data['baseline']}` (execution accuracy, same examples):\n\n"
        out += "| System | Δ EX (points) | 95% CI | relative | wins / losses | McNemar p |\n|---|---:|---:|---:|---:|---:|\n"
        for c in data["comparisons"]:
            e = c["exec"]
            out += (f"| {_md(c['system'])} | {_signed(e['difference'])} | [{_signed(e['low'])}, {_signed(e['high'])}]"
                    f" | {_signed(e['relative'], digits=1)}% | {e['only_system']} / {e['only_baseline']}"
                    f" | {_p(e['p_value'])} |\n")
    out += ("\nEX: execution accuracy, EM: exact-set match (values ignored); 95% bootstrap intervals "
            f"({data['statistics']['bootstrap_resamples']} resamples) in brackets; n: scored examples.")
    for note in data.get("notes", []):
        if note.startswith("The runs cover different questions"):
            out += "\n\n" + note
    skipped = {row["system"]: row["skipped"] for row in data["summary"] if row["skipped"]}
    if skipped:
        out += " Skipped (not scored, e.g. missing database): " + ", ".join(f"{k} {v}" for k, v in skipped.items()) + "."
    out += "\n"
    return out


def _md(text: str) -> str:
    return str(text).replace("|", "\\|")


def _html_report(runs: list[an.Run], data: dict, *, title: str | None, per_class: int) -> str:
    systems = data["systems"]
    totals = {r.name: len(r.records) for r in runs}
    dist = an.error_distribution(runs)
    ch = {
        "exec": charts.difficulty_chart(data["summary"], "exec"),
        "exact": charts.difficulty_chart(data["summary"], "exact"),
        "errors": charts.error_chart(dist, totals) if dist.to_numpy().sum() else None,
    }
    curves = [(r.name, charts.curves_chart(r.curves, r.name)) for r in runs if r.curves is not None]
    breakdowns = {k: dict(v, **_wide_breakdown(v["rows"], systems)) for k, v in data["breakdowns"].items()}
    # the by-database table goes last and is folded away; it can be long
    studies = an.case_studies(runs, per_class=per_class)
    error_rows = [
        {"system": s, "counts": data["errors"]["counts"].get(s, {}), "total": totals[s]} for s in systems
    ]
    meta = []
    for r in runs:
        cfg = r.config
        meta.append({
            "name": r.name, "dataset": r.dataset_name or "–",
            "system": (cfg.get("run") or {}).get("system") or r.metrics.get("system") or "–",
            "config_hash": (cfg.get("config_hash") or r.metrics.get("config_hash") or "")[:12],
            "n": len(r.records), "path": str(r.path) if r.path else "",
            "throughput": r.metrics.get("throughput") or {},
        })
    env = _env()
    return env.get_template("report.html.j2").render(
        title=title or "t2s-bench report: " + ", ".join(systems),
        generated=_dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        data=data, levels=LEVELS, charts=ch, curves=curves, breakdowns=breakdowns, studies=studies,
        error_rows=error_rows, error_classes=data["errors"]["classes"], meta=meta,
        browser=browser_data(runs),
    )


# ---------------------------------------------------------------- dataset report


def _is_scalar(v) -> bool:
    return v is None or isinstance(v, (str, int, float, bool))


def _stats_blocks(obj, title: str, depth: int = 0) -> list[dict]:
    """Generic layout of a nested stats dict as titled tables: scalars -> key/value table; dict of
    scalar-dicts or list of dicts -> one table with a column per key; deeper nesting -> sub-sections."""
    blocks: list[dict] = []
    if isinstance(obj, dict):
        scalars = {k: v for k, v in obj.items() if _is_scalar(v) or (isinstance(v, list) and all(map(_is_scalar, v)))}
        if scalars:
            blocks.append({"title": title, "depth": depth, "kind": "kv",
                           "rows": [(k, _fmt_scalar(v)) for k, v in scalars.items()]})
        rest = {k: v for k, v in obj.items() if k not in scalars}
        for k, v in rest.items():
            sub = f"{title} › {k}" if title else str(k)
            if isinstance(v, dict) and v and all(isinstance(x, dict) and all(map(_is_scalar, x.values()))
                                                 for x in v.values()):
                cols = list(dict.fromkeys(c for x in v.values() for c in x))
                blocks.append({"title": sub, "depth": depth + 1, "kind": "table", "columns": [""] + cols,
                               "rows": [[rk] + [_fmt_scalar(x.get(c)) for c in cols] for rk, x in v.items()]})
            elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
                cols = list(dict.fromkeys(c for x in v for c in x))
                blocks.append({"title": sub, "depth": depth + 1, "kind": "table", "columns": cols,
                               "rows": [[_fmt_scalar(x.get(c)) if _is_scalar(x.get(c)) else json.dumps(x.get(c), default=str)
                                         for c in cols] for x in v]})
            else:
                blocks += _stats_blocks(v, sub, depth + 1)
    elif isinstance(obj, list):
        blocks.append({"title": title, "depth": depth, "kind": "kv",
                       "rows": [(str(i), _fmt_scalar(x) if _is_scalar(x) else json.dumps(x, default=str))
                                for i, x in enumerate(obj)]})
    else:
        blocks.append({"title": title, "depth": depth, "kind": "kv", "rows": [("value", _fmt_scalar(obj))]})
    return blocks


def _fmt_scalar(v) -> str:
    if isinstance(v, list):
        return ", ".join(_fmt_scalar(x) for x in v)
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e6 else f"{v:,.0f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return "–" if v is None else str(v)


def render_dataset_report(stats: dict | list[dict], out_path: str | Path, *, title: str | None = None) -> Path:
    """A self-contained HTML page of dataset statistics (whatever keys `stats` has); a list of
    stats dicts (several datasets) gives one section per dataset."""
    if isinstance(stats, list) and stats and all(isinstance(s, dict) for s in stats):
        names = [str(s.get("name") or s.get("dataset") or f"dataset {i + 1}") for i, s in enumerate(stats)]
        blocks = [b for n, s in zip(names, stats) for b in _stats_blocks(s, n)]
        name = ", ".join(names)
    elif isinstance(stats, dict):
        name = stats.get("name") or stats.get("dataset") or "dataset"
        blocks = _stats_blocks(stats, "")
    else:
        raise ValueError("dataset stats must be a dict (or a list of dicts, one per dataset)")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    text = _env().get_template("dataset.html.j2").render(
        title=title or f"t2s-bench dataset report: {name}",
        generated=_dt.datetime.now().strftime("%Y-%m-%d %H:%M"), blocks=blocks,
    )
    out_path.write_text(text, encoding="utf-8")
    return out_path


__all__ = ["render_report", "render_dataset_report", "report_data", "markdown_table", "highlight_sql",
           "browser_data", "FORMATS"]
