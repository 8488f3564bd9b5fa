"""`t2s-bench demo`: the Streamlit demo (in-process model, or a running `t2s-bench serve` with --api)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

HELP = """Open the Streamlit demo: database selector (the demo data, Spider dev when present, or your own SQLite file),
schema viewer, sample questions, generated SQL with its validation, and read-only execution. The model loads once in
the demo's process; with --api URL the demo calls a running `t2s-bench serve` instead."""


def add_parser(sub) -> None:
    from t2s_bench.cli.serve import add_system_arguments

    p = sub.add_parser("demo", help="the Streamlit demo", description=HELP)
    add_system_arguments(p)
    p.add_argument("--api", help="URL of a running `t2s-bench serve` (default: run the model in the demo)")
    p.add_argument("--token", help="bearer token of that server (default: $T2S_SERVE_TOKEN)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8501, help="port (default 8501)")
    p.set_defaults(func=main)


def streamlit_command(port: int, host: str = "127.0.0.1") -> list[str]:
    import importlib.util

    script = importlib.util.find_spec("t2s_bench.serving.demo_app").origin  # not imported: it is the page
    return [sys.executable, "-m", "streamlit", "run", script, "--server.port", str(port),
            "--server.address", host, "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none", "--client.toolbarMode", "viewer", "--server.maxUploadSize", "200", "--theme.base", "light"]


def main(args) -> int:
    import streamlit  # noqa: F401  (a clear "install the serve extra" message when absent)

    from t2s_bench.cli.serve import system_options
    from t2s_bench.serving.app import TOKEN_ENV
    from t2s_bench.serving.client import DEMO_CONFIG_ENV

    config = {"system": args.system, "system_options": system_options(args),
              "datasets": args.datasets or ["demo", "spider-dev"], "api": args.api,
              "token": args.token or os.environ.get(TOKEN_ENV)}
    for path in args.db_files:
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path} does not exist")
    config["db_files"] = [str(Path(p).resolve()) for p in args.db_files]
    env = {**os.environ, DEMO_CONFIG_ENV: json.dumps(config)}
    print(f"t2s-bench demo: http://{args.host}:{args.port}  (Ctrl-C stops it)")
    cmd = streamlit_command(args.port, args.host)
    sys.stdout.flush()
    os.execve(cmd[0], cmd, env)  # streamlit replaces this process: a signal to it stops the demo, no orphan
    return 0
