"""`t2s-bench demo` as a user sees it: the real Streamlit server (a subprocess on a free loopback port) in
headless Chromium, driven by Playwright on the system Chromium. A deep link asks a question and executes the
answer; the page must show the generated SQL and the rows, and a screenshot is taken.

    python tests/serving/test_demo_browser.py --model MODEL.gguf --out docs/demo.png   # the README's screenshot
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"),
                             shutil.which("google-chrome")) if p), None)
QUESTION = "How many students are older than 20?"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_demo(model: str, port: int, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "t2s_bench", "demo", "--model", model, "--backend", "llama-cpp", "--n-ctx", "2048",
           "--dataset", "demo", "--port", str(port), *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    import httpx

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"demo exited: {proc.stdout.read()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise RuntimeError("demo did not start in 90 s")


def capture(url: str, out: Path, timeout_s: float = 300) -> str:
    """Open the page in headless Chromium, wait for the executed result, save a screenshot; returns the page text."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 1200}, device_scale_factor=1)
        page.goto(url)
        page.get_by_text("Generated SQL").wait_for(timeout=timeout_s * 1000)
        page.locator("[data-testid='stCaptionContainer']", has_text=" ms").or_(
            page.locator("[data-testid='stAlertContentError']")).first.wait_for(timeout=timeout_s * 1000)
        page.wait_for_timeout(800)  # let the data grid paint
        text = page.inner_text("body")
        page.screenshot(path=str(out))
        browser.close()
    return text


def demo_url(port: int) -> str:
    return f"http://127.0.0.1:{port}/?" + urlencode({"db": "school", "q": QUESTION, "run": "1", "execute": "1"})


def test_demo_in_headless_chromium(tmp_path, tiny_model):
    if CHROMIUM is None:
        pytest.skip("headless Chromium not installed (chromium / chromium-browser / google-chrome)")
    pytest.importorskip("playwright", reason="playwright drives the system Chromium (pip install playwright)")
    port = free_port()
    proc = start_demo(str(tiny_model.gguf_path), port, "--max-new-tokens", "16")
    try:
        text = capture(demo_url(port), tmp_path / "demo.png")
    finally:
        proc.terminate()
        proc.wait(30)
    assert "Text to SQL" in text and "Generated SQL" in text
    assert "Traceback" not in text
    # random weights: the SQL does not validate, and the page says so instead of running it
    assert "did not pass validation" in text or " ms" in text
    assert (tmp_path / "demo.png").stat().st_size > 30_000  # a blank or skeleton page is under 10 KB


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="screenshot of the running demo")
    parser.add_argument("--model", required=True)
    parser.add_argument("--out", default="docs/demo.png")
    args = parser.parse_args()
    port = free_port()
    proc = start_demo(args.model, port)
    try:
        raw = Path(args.out).with_suffix(".full.png")
        print(capture(demo_url(port), raw)[:2000])
    finally:
        proc.terminate()
        proc.wait(30)
    from PIL import Image

    Image.open(raw).convert("P", palette=Image.ADAPTIVE, colors=128).save(args.out, optimize=True)
    raw.unlink()
    print(f"wrote {args.out}: {os.path.getsize(args.out) // 1024} KiB")
