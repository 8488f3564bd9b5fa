"""The example suite under benchmarks/regression runs, and passes, in this repository's CI."""

from __future__ import annotations

import shutil
from pathlib import Path

pytest_plugins = ["pytester"]

EXAMPLE = Path(__file__).resolve().parents[2] / "benchmarks" / "regression"


def test_the_example_suite_passes(pytester):
    """Its files copied into a fresh folder (no runs to reuse). The real-model case (Qwen 0.5B on 12
    questions, minutes on a shared 2-core CPU) is left to `python -m pytest benchmarks/regression`."""
    for path in EXAMPLE.iterdir():
        if path.name in ("runs", "__pycache__"):
            continue
        if path.is_dir():
            shutil.copytree(path, pytester.path / path.name)
        else:
            shutil.copy(path, pytester.path / path.name)
    # in a subprocess, as CI runs it; also, the tiny model imports torch, which cannot be imported twice
    # in one process (pytester's in-process runs drop the modules first imported inside them)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-k", "not qwen", "-rs")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes.get("errors", 0) == 0, result.stdout.str()
    assert outcomes.get("passed", 0) + outcomes.get("skipped", 0) == 4 and outcomes["passed"] >= 3
    result.stdout.fnmatch_lines(["*t2s: * runs (*), * new predictions*"])
