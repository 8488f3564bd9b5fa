"""fetch_spider: real HTTP download over loopback, Range resume, checksum, atomic unpack, --from."""

import hashlib
import io
import json
import random
import sqlite3
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from t2s_bench.datasets import load_spider_format
from t2s_bench.datasets.fetch import FetchError, fetch_spider


def _tiny_spider_zip(tmp_path, top="spider_data"):
    """A Spider-format dataset (tables.json, dev.json, database/x/x.sqlite) zipped under `top/`."""
    db = tmp_path / "x.sqlite"
    con = sqlite3.connect(db)
    con.executescript("CREATE TABLE pet (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO pet VALUES (1,'Rex'),(2,'Tom');")
    con.close()
    tables = [{
        "db_id": "x", "table_names_original": ["pet"], "table_names": ["pet"],
        "column_names_original": [[-1, "*"], [0, "id"], [0, "name"]],
        "column_names": [[-1, "*"], [0, "id"], [0, "name"]],
        "column_types": ["text", "number", "text"], "primary_keys": [1], "foreign_keys": [],
    }]
    dev = [{"db_id": "x", "question": "How many pets?", "query": "SELECT count(*) FROM pet"}]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(f"{top}/tables.json", json.dumps(tables))
        zf.writestr(f"{top}/dev.json", json.dumps(dev))
        zf.write(db, f"{top}/database/x/x.sqlite")
        # padding so that a partial download is meaningfully partial
        zf.writestr(f"{top}/padding.bin", random.Random(0).randbytes(600_000))
        zf.writestr("__MACOSX/._tables.json", "junk")
    return buf.getvalue()


class _Server:
    """Serves one payload at /spider.zip; honours `Range: bytes=N-`; can cut the first response short."""

    def __init__(self, payload, cut_first_at=None, honour_range=True):
        self.payload, self.cut, self.honour_range = payload, cut_first_at, honour_range
        self.requests = []  # (path, Range header)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                rng = self.headers.get("Range")
                server.requests.append((self.path, rng))
                if self.path != "/spider.zip":
                    self.send_error(404)
                    return
                data, start = server.payload, 0
                if rng and server.honour_range:
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.cut is not None:
                    cut, server.cut = server.cut, None
                    self.wfile.write(body[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/spider.zip"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def payload(tmp_path):
    return _tiny_spider_zip(tmp_path)


def _assert_installed(dest):
    ds = load_spider_format(dest / "dev.json", dest / "tables.json", dest / "database", "t")
    assert len(ds) == 1 and ds.db_path("x") is not None
    assert not (dest / "__MACOSX").exists()


def test_download_verify_unpack(tmp_path, payload):
    server = _Server(payload)
    try:
        dest = tmp_path / "cache" / "spider"
        sha = hashlib.sha256(payload).hexdigest()
        out = fetch_spider(dest, url=server.url, sha256=sha, progress=False)
        assert out == dest
        _assert_installed(dest)
        # the archive and temporary folders are gone; a second call is a no-op (no new request)
        assert sorted(p.name for p in dest.parent.iterdir()) == ["spider"]
        n = len(server.requests)
        fetch_spider(dest, url=server.url, progress=False)
        assert len(server.requests) == n
    finally:
        server.close()


def test_checksum_mismatch_is_an_error_and_installs_nothing(tmp_path, payload):
    server = _Server(payload)
    try:
        dest = tmp_path / "spider"
        with pytest.raises(FetchError, match="SHA-256 mismatch"):
            fetch_spider(dest, url=server.url, sha256="0" * 64, progress=False)
        assert not dest.exists()
        assert not (tmp_path / "spider.zip").exists()  # deleted: the next run downloads again
    finally:
        server.close()


def test_interrupted_download_resumes_with_range(tmp_path, payload):
    server = _Server(payload, cut_first_at=len(payload) // 3)
    try:
        dest = tmp_path / "spider"
        with pytest.raises(FetchError, match="rerun to resume|interrupted"):
            fetch_spider(dest, url=server.url, progress=False)
        part = tmp_path / "spider.zip.part"
        assert part.is_file() and 0 < part.stat().st_size < len(payload)
        assert not dest.exists()
        held = part.stat().st_size
        fetch_spider(dest, url=server.url, sha256=hashlib.sha256(payload).hexdigest(), progress=False)
        assert server.requests[-1] == ("/spider.zip", f"bytes={held}-")
        _assert_installed(dest)
    finally:
        server.close()


def test_server_ignoring_range_restarts_cleanly(tmp_path, payload):
    server = _Server(payload, honour_range=False)
    try:
        (tmp_path / "spider.zip.part").write_bytes(payload[:1000])
        dest = fetch_spider(tmp_path / "spider", url=server.url,
                            sha256=hashlib.sha256(payload).hexdigest(), progress=False)
        assert server.requests[-1][1] == "bytes=1000-"
        _assert_installed(dest)
    finally:
        server.close()


def test_http_error_and_html_page_are_clear(tmp_path, payload):
    server = _Server(payload)
    try:
        with pytest.raises(FetchError, match="HTTP 404"):
            fetch_spider(tmp_path / "spider", url=server.url.replace("spider.zip", "nope"), progress=False)
    finally:
        server.close()


def test_from_local_zip_and_folder(tmp_path, payload):
    archive = tmp_path / "spider_data.zip"
    archive.write_bytes(payload)
    dest = fetch_spider(tmp_path / "a" / "spider", from_path=archive, progress=False)
    _assert_installed(dest)
    assert archive.is_file()  # a user's file is never deleted
    with pytest.raises(FetchError, match="SHA-256"):
        fetch_spider(tmp_path / "b" / "spider", from_path=archive, sha256="f" * 64, progress=False)
    dest2 = fetch_spider(tmp_path / "c" / "spider", from_path=dest, progress=False)
    _assert_installed(dest2)


def test_interrupted_unpack_leaves_no_half_folder(tmp_path, payload):
    dest = tmp_path / "spider"
    # a stale temporary folder from a killed unpack is not taken as an install, and is cleaned up
    stale = tmp_path / ".spider-unpack-dead"
    (stale / "spider_data").mkdir(parents=True)
    archive = tmp_path / "in.zip"
    archive.write_bytes(payload)
    fetch_spider(dest, from_path=archive, progress=False)
    assert not stale.exists()
    _assert_installed(dest)


def test_archive_without_tables_json_is_rejected(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("something/else.txt", "x")
    archive = tmp_path / "bad.zip"
    archive.write_bytes(buf.getvalue())
    with pytest.raises(FetchError, match="no tables.json"):
        fetch_spider(tmp_path / "spider", from_path=archive, progress=False)
    assert not (tmp_path / "spider").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bad.zip"]
