"""The `t2s-bench` command: a thin layer over the Python API, one module per subcommand."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# subcommand -> module under t2s_bench.cli; each module defines `add_parser(subparsers)`
# which registers its parser and sets `func` (args -> exit code) as a default.
COMMANDS = ["data", "score", "run", "report", "train", "models", "serve", "demo", "baseline", "compare", "suite"]
# optional dependency (top-level module) -> the extra that installs it
OPTIONAL_EXTRAS = {"torch": "hf", "transformers": "hf", "peft": "hf", "accelerate": "hf", "gguf": "hf",
                   "llama_cpp": "gguf", "bitsandbytes": "train",
                   "fastapi": "serve", "uvicorn": "serve", "httpx": "serve", "streamlit": "serve"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="t2s-bench",
        description="Benchmark text-to-SQL systems on Spider-format data: execution accuracy, "
        "exact-set match, error analysis and HTML reports.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"t2s_bench.cli.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"t2s_bench.cli.{name}":
                continue  # subcommand not built yet
            raise
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt as e:  # runner.RunInterrupted says where the run is saved
        print(f"\nt2s-bench {args.command}: {e or 'interrupted'}", file=sys.stderr)
        return 130
    except ModuleNotFoundError as e:
        extra = OPTIONAL_EXTRAS.get((e.name or "").split(".")[0])
        if extra is None:
            raise
        print(f"t2s-bench {args.command}: error: this needs {e.name}, which is not installed: "
              f"pip install 't2s-bench[{extra}]' (see the README for the CPU build of torch)", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError, KeyError, RuntimeError) as e:
        message = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"t2s-bench {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
