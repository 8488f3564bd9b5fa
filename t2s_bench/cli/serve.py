"""`t2s-bench serve`: the text-to-SQL HTTP service (FastAPI + uvicorn), see docs/SERVING.md."""

from __future__ import annotations

import argparse
import os

HELP = """Serve a system over HTTP: POST /generate_sql, /execute, /validate; GET /health, /systems, /databases,
/databases/{db_id}/schema; OpenAPI docs at /docs. The model loads once at start. Binds 127.0.0.1 unless told
otherwise; with --token (or $T2S_SERVE_TOKEN) every endpoint but /health needs `Authorization: Bearer TOKEN`."""


def add_system_arguments(p: argparse.ArgumentParser) -> None:
    """System and backend options, as `t2s-bench run` names them (shared with `t2s-bench demo`)."""
    p.add_argument("--system", default="zero-shot", help="system name (default: zero-shot)")
    p.add_argument("--model", help="catalog name, .gguf file or HF folder (default: qwen2.5-coder-0.5b-gguf)")
    p.add_argument("--backend", help="llama-cpp, transformers, openai (default: from --model)")
    p.add_argument("--template", help="prompt template version (default v1.0)")
    p.add_argument("--k", type=int, help="few-shot / RAG examples")
    p.add_argument("--max-new-tokens", type=int, help="generation limit (default 256)")
    p.add_argument("--adapter", help="PEFT adapter folder (finetuned system)")
    p.add_argument("--n-ctx", type=int, help="llama.cpp context window")
    p.add_argument("--n-threads", type=int, help="llama.cpp CPU threads")
    p.add_argument("--parallel", type=int, help="llama.cpp parallel sequences (default 8 on CPU)")
    p.add_argument("--n-gpu-layers", type=int, help="llama.cpp layers offloaded to the GPU (-1: all)")
    p.add_argument("--device", help="transformers device (cuda, cpu)")
    p.add_argument("-S", dest="set_system", action="append", default=[], metavar="KEY=VALUE", help="a system option")
    p.add_argument("-B", dest="set_backend", action="append", default=[], metavar="KEY=VALUE", help="a backend option")
    p.add_argument("--dataset", action="append", dest="datasets",
                   help="databases of this dataset (repeatable; default: demo, and spider-dev when present)")
    p.add_argument("--db", action="append", dest="db_files", default=[], metavar="FILE.sqlite",
                   help="also serve this SQLite file, read-only (repeatable)")


def system_options(args) -> dict:
    from t2s_bench.cli.run import parse_assignments

    names = ["model", "backend", "template", "k", "max_new_tokens", "adapter", "n_ctx", "n_threads", "parallel",
             "n_gpu_layers", "device"]
    options = {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}
    options.update(parse_assignments(args.set_system, "-S"))
    backend = parse_assignments(args.set_backend, "-B")
    if backend:
        options["backend_options"] = backend
    return options


def add_parser(sub) -> None:
    p = sub.add_parser("serve", help="serve a system over HTTP (FastAPI)", description=HELP)
    add_system_arguments(p)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--token", help="bearer token required by every endpoint but /health (default: $T2S_SERVE_TOKEN)")
    p.add_argument("--max-body-bytes", type=int, default=256 * 1024, help="largest request body (default 256 KiB)")
    p.add_argument("--max-concurrent", type=int, default=8,
                   help="generations in flight, batched together (default 8); more requests wait")
    p.add_argument("--row-cap", type=int, default=1000, help="most rows an execution returns (default 1000)")
    p.add_argument("--exec-timeout", type=float, default=10.0, help="execution time limit in seconds (default 10)")
    p.set_defaults(func=main)


def main(args) -> int:
    import uvicorn

    from t2s_bench.serving.app import TOKEN_ENV, create_app

    if args.host not in ("127.0.0.1", "localhost", "::1") and not (args.token or os.environ.get(TOKEN_ENV)):
        print(f"t2s-bench serve: warning: listening on {args.host} without a token (--token or ${TOKEN_ENV})")
    app = create_app(args.system, system_options=system_options(args),
                     datasets=args.datasets or ("demo", "spider-dev"), db_files=args.db_files, token=args.token,
                     max_body_bytes=args.max_body_bytes, max_concurrent=args.max_concurrent, row_cap=args.row_cap,
                     exec_timeout_s=args.exec_timeout)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0
