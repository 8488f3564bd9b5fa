"""The HTML report in headless Chromium: the JS example browser builds its rows, without console errors."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the fixture builder of test_reporting.py
from test_reporting import make_fixture_runs  # noqa: E402

from t2s_bench.reporting.analysis import load_runs
from t2s_bench.reporting.render import render_report

pytestmark = pytest.mark.browser

CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"),
                             shutil.which("google-chrome")) if p), None)


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    if CHROMIUM is None:
        pytest.skip("headless Chromium not installed (chromium / chromium-browser / google-chrome)")
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--enable-logging=stderr", "--v=0",
           f"--user-data-dir={tmp_path / 'profile'}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@pytest.fixture
def report(tmp_path):
    runs = load_runs(make_fixture_runs(tmp_path / "runs"))
    return render_report(runs, tmp_path / "report.html", baseline="zero-shot", n_resamples=200)


def _console_errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "CONSOLE" in line and ("Uncaught" in line or "Error" in line)]


def test_browser_rows_built_without_console_errors(report, tmp_path):
    proc = chromium(tmp_path, "--dump-dom", report.resolve().as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    assert not _console_errors(proc.stderr), _console_errors(proc.stderr)
    # 11 examples x 2 systems = 22 predictions, first page of 25 drawn by the script
    assert dom.count('class="card ex-row"') == 22
    assert "22 of 22 predictions" in dom
    assert "The example browser needs JavaScript." not in dom
    # the hostile prediction is shown as text, never run: no injected script element in the live DOM
    assert "<script>alert(1)</script>" not in dom
    assert "&lt;/script&gt;&lt;script&gt;alert(1)" in dom


def test_screenshot_renders(report, tmp_path):
    shot = tmp_path / "report.png"
    proc = chromium(tmp_path, f"--screenshot={shot}", "--window-size=1400,2000", report.resolve().as_uri())
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    assert shot.stat().st_size > 50_000  # a blank page is a few KiB


def test_deep_link_filters(report, tmp_path):
    url = report.resolve().as_uri() + "#browser?system=zero-shot&class=wrong_value"
    proc = chromium(tmp_path, "--dump-dom", url)
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    # zero-shot has exactly one wrong_value failure (question #1: 'france')
    assert dom.count('class="card ex-row"') == 1
    assert "1 of 22 predictions" in dom and "Names of singers from France?" in dom
