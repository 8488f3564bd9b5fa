"""Read-only, time- and memory-bounded SQLite execution in worker processes, and the gold-result cache.

Exports load lazily, so a pool worker (which needs only the executor) starts fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_EXPORTS = {
    "ExecResult": "executor",
    "execute": "executor",
    "execute_in_process": "executor",
    "close_connections": "executor",
    "ExecutionPool": "pool",
    "execute_many": "pool",
    "close_workers": "pool",
    "GoldCache": "cache",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from .cache import GoldCache as GoldCache
    from .executor import ExecResult as ExecResult
    from .executor import close_connections as close_connections
    from .executor import execute as execute
    from .executor import execute_in_process as execute_in_process
    from .pool import ExecutionPool as ExecutionPool
    from .pool import close_workers as close_workers
    from .pool import execute_many as execute_many


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
