"""The linter and the type checker, configured in pyproject.toml, pass (run inside the test suite so
CI runs them with the README's test command). Skipped when the tools are not installed."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _module_available(name: str) -> bool:
    return subprocess.run([sys.executable, "-m", name, "--version"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _module_available("ruff"), reason="ruff not installed (pip install -e '.[dev]')")
def test_ruff():
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--output-format", "concise", "."],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.skipif(not _module_available("mypy"), reason="mypy not installed (pip install -e '.[dev]')")
def test_mypy_on_the_core_packages():
    proc = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_tools_are_configured():
    text = (ROOT / "pyproject.toml").read_text()
    assert "[tool.ruff" in text and "[tool.mypy]" in text and shutil.which("git") is not None
