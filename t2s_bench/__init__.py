"""t2s-bench: honest, reproducible text-to-SQL benchmarking.

    import t2s_bench as t
    r = t.evaluate("zero-shot", dataset="demo", limit=8)
    r.metrics; r.records.head()

The public API (`t2s_bench.api`) and the registries load on first use, so `import t2s_bench`
stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.2.0"

_LAZY = {
    "evaluate": "t2s_bench.api",
    "score": "t2s_bench.api",
    "report": "t2s_bench.api",
    "load_run": "t2s_bench.api",
    "build_suite": "t2s_bench.api",
    "RunResult": "t2s_bench.api",
    "ScoreResult": "t2s_bench.api",
    "RunConfig": "t2s_bench.runner",
    "Task": "t2s_bench.records",
    "Prediction": "t2s_bench.records",
    "ScoreRecord": "t2s_bench.records",
    "RunDir": "t2s_bench.rundir",
    "register_system": "t2s_bench.systems.base",
    "register_backend": "t2s_bench.backends.base",
    "register_dataset": "t2s_bench.datasets.registry",
    "register_metric": "t2s_bench.scoring.metrics",
    "load_dataset": "t2s_bench.datasets.registry",
}
__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 't2s_bench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
