"""The Streamlit demo of `t2s-bench demo`: pick a database, ask a question, see the SQL, validate, execute.

Run through the CLI (`t2s-bench demo`), which passes its settings as JSON in $T2S_DEMO_CONFIG:
{"system", "system_options", "datasets", "api", "token"}. Without "api" the service runs in this
process (the model loads once per server process, `st.cache_resource`); with "api" the demo calls a
running `t2s-bench serve`.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from t2s_bench.serving.client import DEMO_CONFIG_ENV, ClientError, HttpClient, LocalClient

MAX_ROWS_SHOWN = 200


def demo_config() -> dict:
    return json.loads(os.environ.get(DEMO_CONFIG_ENV) or "{}")


@st.cache_resource(show_spinner="Loading the model (once per server)…")
def get_client(config_json: str):
    config = json.loads(config_json)
    if config.get("api"):
        return HttpClient(config["api"], token=config.get("token"))
    return LocalClient.build(config.get("system", "zero-shot"), config.get("system_options") or {},
                             config.get("datasets") or ("demo", "spider-dev"), config.get("db_files") or [])


def upload_database(client, uploaded) -> str | None:
    """Save an uploaded SQLite file (content-addressed) and serve it read-only; returns its db_id."""
    data = uploaded.getvalue()
    digest = hashlib.sha256(data).hexdigest()[:12]
    folder = Path(tempfile.gettempdir()) / "t2s-demo-uploads"
    folder.mkdir(exist_ok=True)
    path = folder / f"{digest}.sqlite"
    if not path.exists():
        path.write_bytes(data)
    db_id = f"{Path(uploaded.name).stem}-{digest[:6]}"
    try:
        client.add_database(path, db_id)
    except (ClientError, ValueError) as e:
        st.sidebar.error(str(getattr(e, "detail", e)))
        return None
    return db_id


def schema_viewer(schema: dict) -> None:
    columns = schema["column_names_original"][1:]
    types = schema.get("column_types", [])[1:]
    pk = set(schema.get("primary_keys", []))
    fks = {src: dst for src, dst in schema.get("foreign_keys", [])}
    names = schema["column_names_original"]
    tables = schema["table_names_original"]
    for ti, table in enumerate(tables):
        rows = []
        for ci, ((t, name), ctype) in enumerate(zip(columns, types), start=1):
            if t != ti:
                continue
            key = "PK" if ci in pk else (f"→ {tables[names[fks[ci]][0]]}.{names[fks[ci]][1]}" if ci in fks else "")
            rows.append({"column": name, "type": ctype, "key": key})
        with st.expander(f"**{table}** · {len(rows)} columns"):
            st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def show_validation(result: dict) -> None:
    if result.get("generation_error"):
        st.error(f"Generation failed: {result['generation_error']}")
    if result["valid"]:
        st.success(f"Valid {result.get('statement') or 'query'}: every table and column exists in the schema.")
    else:
        lines = []
        for issue in result["validation_errors"]:
            hint = f" — try {', '.join(issue['suggestions'])}" if issue.get("suggestions") else ""
            lines.append(f"- `{issue['code']}`: {issue['message']}{hint}")
        st.error("The SQL did not pass validation:\n" + "\n".join(lines))
    for warning in result.get("warnings", []):
        st.warning(warning)


def show_execution(result: dict) -> None:
    if result.get("refused"):
        st.error(f"Refused: {result['refused']}")
        return
    if not result["ok"]:
        st.error(f"**{result.get('error_class') or 'error'}**: {result.get('error_reason') or result.get('error')}")
        return
    more = " (truncated)" if result["truncated"] else ""
    st.caption(f"{result['n_rows']} row{'s' if result['n_rows'] != 1 else ''}{more} · {result['execution_time_ms']:.1f} ms")
    st.dataframe(pd.DataFrame(result["rows"], columns=result["columns"]), hide_index=True, width="stretch")
    for warning in result.get("warnings", []):
        st.warning(warning)


def main() -> None:
    st.set_page_config(page_title="t2s-bench · text to SQL", page_icon="🗄️", layout="wide")
    config = demo_config()
    try:
        client = get_client(json.dumps(config, sort_keys=True))
        databases = client.databases()
        info = client.info()
    except Exception as e:  # no traceback on the page: say what failed
        st.error(f"The service could not start: {type(e).__name__}: {e}")
        st.stop()

    with st.sidebar:
        st.header("Database")
        if client.can_upload:
            uploaded = st.file_uploader("Your own SQLite file (opened read-only)", type=["sqlite", "db", "sqlite3"])
            if uploaded is not None:
                new_id = upload_database(client, uploaded)
                if new_id:
                    databases = client.databases()
                    st.session_state.setdefault("db_choice", new_id)
        labels = {d["db_id"]: f"{d['db_id']}  ·  {d['source']}" for d in databases}
        link = st.query_params  # deep link: ?db=school&q=How+many+students&run=1
        if "db_choice" not in st.session_state and link.get("db") in labels:
            st.session_state["db_choice"] = link["db"]
        db_id = st.selectbox("Database", list(labels), format_func=labels.get, key="db_choice")
        db = next(d for d in databases if d["db_id"] == db_id)
        st.caption(f"{len(db['tables'])} tables")
        schema_viewer(client.schema(db_id))
        st.divider()
        st.caption(f"System **{info['system']}** · model `{Path(str(info.get('model') or '-')).name}`")

    st.title("Text to SQL")
    st.caption("Ask a question about the selected database. The SQL is generated, validated against the schema, "
               "and run read-only on request.")
    if db.get("sample_questions"):
        sample = st.selectbox("Sample questions", ["—"] + db["sample_questions"], key=f"sample_{db_id}")
        if sample != "—" and st.session_state.get("last_sample") != sample:
            st.session_state["question"] = sample
            st.session_state["last_sample"] = sample
    autorun = False
    if "linked" not in st.session_state:
        st.session_state["linked"] = True
        if st.query_params.get("q"):
            st.session_state["question"] = st.query_params["q"]
            autorun = st.query_params.get("run") == "1"
    question = st.text_area("Question", key="question", placeholder="e.g. How many students are older than 20?",
                            height=80)
    clicked = st.button("Generate SQL", type="primary", disabled=not (question or "").strip())
    if (clicked or autorun) and (question or "").strip():
        with st.spinner("Generating SQL…"):
            try:
                st.session_state["generated"] = {"db_id": db_id, **client.generate(question.strip(), db_id)}
                st.session_state["sql_editor"] = st.session_state["generated"]["sql"]
                st.session_state.pop("executed", None)
            except ClientError as e:
                st.session_state["generated"] = None
                st.error(f"Request refused ({e.status}): {e.detail}")

    generated = st.session_state.get("generated")
    if generated and generated.get("db_id") == db_id:
        st.subheader("Generated SQL")
        st.code(generated["sql"] or "-- (empty output)", language="sql")
        conf = generated.get("confidence")
        c1, c2, c3 = st.columns(3)
        c1.metric("Confidence", f"{conf:.0%}" if conf is not None else "n/a",
                  help="exp(mean log-probability of the generated tokens)")
        c2.metric("Generation", f"{generated['generation_ms'] / 1000:.2f} s")
        c3.metric("Tokens (prompt / output)", f"{generated['prompt_tokens']} / {generated['completion_tokens']}")
        show_validation(generated)

    st.subheader("Run SQL")
    sql = st.text_area("SQL to execute (edit freely: it is validated first)", key="sql_editor", height=100)
    if (st.button("Execute", disabled=not (sql or "").strip()) or (autorun and st.query_params.get("execute") == "1")) \
            and (sql or "").strip():
        with st.spinner("Executing…"):
            try:
                st.session_state["executed"] = client.execute(db_id, sql, max_rows=MAX_ROWS_SHOWN)
            except ClientError as e:
                st.session_state["executed"] = {"refused": e.detail}
    if st.session_state.get("executed"):
        show_execution(st.session_state["executed"])


main()
