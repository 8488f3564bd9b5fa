"""Scoring: execution match, exact-set match, hardness, error classes; whole prediction sets.

Pure functions (see docs/SCORING.md for the rules and the measured agreement with the official
Spider / test-suite evaluators).
"""

from t2s_bench.scoring.exact_match import components_match, exact_match, foreign_key_map
from t2s_bench.scoring.exec_match import ExecMatchOptions, exec_match, results_equal
from t2s_bench.scoring.hardness import LEVELS, hardness
from t2s_bench.scoring.score import format_table, prepare_for_execution, score_predictions, summarize

try:  # the error taxonomy lives in its own module (scoring/errors.py)
    from t2s_bench.scoring.errors import classify_error
except ModuleNotFoundError as _e:  # pragma: no cover - only while errors.py is absent
    if _e.name != "t2s_bench.scoring.errors":
        raise
    classify_error = None

__all__ = [
    "ExecMatchOptions", "LEVELS", "classify_error", "components_match", "exact_match", "exec_match",
    "foreign_key_map", "format_table", "hardness", "prepare_for_execution", "results_equal",
    "score_predictions", "summarize",
]
