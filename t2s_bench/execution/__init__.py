"""Read-only, time-limited SQLite execution, a worker pool, and the gold-result cache."""

from .cache import GoldCache
from .executor import ExecResult, close_connections, execute
from .pool import ExecutionPool, execute_many

__all__ = ["ExecResult", "ExecutionPool", "GoldCache", "close_connections", "execute", "execute_many"]
