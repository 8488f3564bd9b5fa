"""Systems: the protocol, the registry and the built-in prompted systems."""

from t2s_bench.systems.base import SYSTEMS, Prediction, System, Task, get_system, register_system
from t2s_bench.systems.extract import extract_sql

__all__ = ["SYSTEMS", "Prediction", "System", "Task", "get_system", "register_system", "extract_sql"]
