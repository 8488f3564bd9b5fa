"""Reports over scored runs: breakdowns, bootstrap CIs and paired tests, case studies; HTML/MD/JSON."""

from t2s_bench.reporting.analysis import (
    Run,
    breakdown,
    case_studies,
    compare_to_baseline,
    error_distribution,
    load_run,
    load_runs,
    summary,
)
from t2s_bench.reporting.render import render_dataset_report, render_report, report_data
from t2s_bench.reporting.statistics import accuracy, bootstrap_ci, compare_paired, mcnemar_exact, paired_bootstrap_diff

__all__ = [
    "Run", "load_run", "load_runs", "summary", "breakdown", "compare_to_baseline", "error_distribution",
    "case_studies", "render_report", "render_dataset_report", "report_data", "accuracy", "bootstrap_ci",
    "compare_paired", "mcnemar_exact", "paired_bootstrap_diff",
]
