"""Download and unpack the official Spider release: resumable, checksummed, atomically installed.

The Spider site (https://yale-lily.github.io/spider) links a Google Drive file, `spider_data.zip`
(about 200 MB). DEFAULT_URL is Drive's direct-download address for that file; Drive may change it, rate
limit it or answer with an HTML page instead of the zip. Then download the zip in a browser and pass it
with `--from spider_data.zip`, or give another mirror with `--url`. Any Spider-format zip works: the
folder holding `tables.json` is located inside the archive.

Protocol: bytes go to `<dest>.zip.part`, resumed with an HTTP Range request when a previous download
was interrupted; the finished file is renamed `<dest>.zip`, checked against a SHA-256 when one is given,
extracted into a temporary folder beside `dest` and renamed into place. A folder at `dest` is therefore
always complete; a crash leaves only a `.part` file or a temporary folder that the next run replaces.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

import requests
from tqdm import tqdm

from t2s_bench import paths
from t2s_bench.files import file_sha256 as _file_sha256

log = logging.getLogger(__name__)

SPIDER_DRIVE_ID = "1403EGqzIDoHMdQF4c9Bkyl7dZLZ5Wt6J"  # spider_data.zip, as linked from the Spider site
DEFAULT_URL = f"https://drive.usercontent.google.com/download?id={SPIDER_DRIVE_ID}&export=download&confirm=t"
# Google Drive publishes no checksum; pass --sha256 to pin the archive you trust.
KNOWN_SHA256: dict[str, str] = {}
CHUNK = 1 << 20
DOWNLOAD_CHUNK = 1 << 16  # small, so an interrupted transfer keeps almost all it received
TIMEOUT_S = 60


class FetchError(RuntimeError):
    """The download or the archive is unusable (the message says what to do)."""


def default_dest() -> Path:
    return paths.cache_dir() / "spider"


def is_spider_folder(folder: Path) -> bool:
    return (folder / "tables.json").is_file()


def fetch_spider(
    dest: str | Path | None = None,
    url: str = DEFAULT_URL,
    sha256: str | None = None,
    from_path: str | Path | None = None,
    progress: bool = True,
) -> Path:
    """Install Spider at `dest` (default: cache_dir()/spider) and return that folder.

    `from_path` installs from a local zip or an already-unpacked folder instead of downloading.
    An existing complete folder at `dest` is returned as is.
    """
    dest = Path(dest) if dest else default_dest()
    if is_spider_folder(dest):
        log.info("Spider already installed at %s", dest)
        return dest
    if dest.exists() and any(dest.iterdir()):
        raise FetchError(f"{dest} exists but holds no tables.json: remove it or choose another --dest")
    dest.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(dest)
    expected = (sha256 or KNOWN_SHA256.get(url) or "").lower() or None
    if from_path is not None:
        source = Path(from_path)
        if source.is_dir():
            _install_folder(source, dest)
            return dest
        if not source.is_file():
            raise FileNotFoundError(f"--from {source}: no such file or folder")
        _verify(source, expected, delete_on_mismatch=False)
        _unpack(source, dest)
        return dest
    archive = dest.parent / f"{dest.name}.zip"
    if not archive.is_file():
        try:
            download(url, archive, progress=progress)
        except requests.RequestException as e:
            raise FetchError(f"download of {url} failed ({e}); rerun to resume") from e
    _verify(archive, expected, delete_on_mismatch=True)
    _unpack(archive, dest)
    archive.unlink()
    return dest


def download(url: str, target: Path, *, progress: bool = True) -> Path:
    """Download `url` to `target` through `target.part`, resuming a partial `.part` file."""
    part = target.with_name(target.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    with requests.get(url, stream=True, headers=headers, timeout=TIMEOUT_S) as resp:
        if resp.status_code == 416 and have:
            log.info("server reports %s complete", part)  # nothing beyond what we hold
        else:
            if resp.status_code == 206:
                start = _range_start(resp.headers.get("Content-Range", ""))
                if start != have:
                    raise FetchError(f"server resumed at byte {start}, expected {have}; delete {part} and retry")
                mode = "ab"
            elif resp.status_code == 200:
                if have:
                    log.info("server ignored the Range request: downloading from the start")
                have, mode = 0, "wb"
            else:
                raise FetchError(f"download failed: HTTP {resp.status_code} from {url}")
            if "text/html" in resp.headers.get("Content-Type", ""):
                raise FetchError(
                    f"{url} answered with a web page, not a zip (Google Drive quota or confirmation page). "
                    "Download spider_data.zip in a browser from https://yale-lily.github.io/spider and run "
                    "`t2s-bench data fetch spider --from spider_data.zip`, or pass another --url."
                )
            length = resp.headers.get("Content-Length")
            total = have + int(length) if length and length.isdigit() else None
            with open(part, mode) as f, tqdm(
                total=total, initial=have, unit="B", unit_scale=True, desc=target.name, disable=not progress
            ) as bar:
                for chunk in resp.iter_content(DOWNLOAD_CHUNK):
                    f.write(chunk)
                    bar.update(len(chunk))
            if total is not None and part.stat().st_size != total:
                raise FetchError(f"download interrupted at {part.stat().st_size}/{total} bytes; rerun to resume")
    os.replace(part, target)
    return target


def _range_start(content_range: str) -> int | None:
    # "bytes 100-999/1000"
    try:
        return int(content_range.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def file_sha256(path: Path) -> str:
    return _file_sha256(path, CHUNK)


def _verify(archive: Path, expected: str | None, *, delete_on_mismatch: bool) -> None:
    if expected is None:
        log.info("no SHA-256 given for %s: not verified (sha256 %s)", archive.name, file_sha256(archive))
        return
    actual = file_sha256(archive)
    if actual != expected:
        if delete_on_mismatch:
            archive.unlink()
        raise FetchError(
            f"SHA-256 mismatch for {archive.name}: expected {expected}, got {actual}"
            + ("; the file was deleted, rerun to download again" if delete_on_mismatch else "")
        )


def _temp_prefix(dest: Path) -> str:
    return f".{dest.name}-unpack-"


def _remove_stale_temporaries(dest: Path) -> None:
    for stale in dest.parent.glob(_temp_prefix(dest) + "*"):
        shutil.rmtree(stale, ignore_errors=True)


def _find_root(folder: Path) -> Path:
    """The shallowest folder holding tables.json (Spider zips nest `spider/` or `spider_data/`)."""
    found = sorted(
        (p.parent for p in folder.rglob("tables.json") if "__MACOSX" not in p.parts),
        key=lambda p: len(p.parts),
    )
    if not found:
        raise FetchError(f"no tables.json inside {folder}: not a Spider-format dataset")
    return found[0]


def _unpack(archive: Path, dest: Path) -> None:
    if not zipfile.is_zipfile(archive):
        raise FetchError(f"{archive} is not a zip archive")
    tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(dest), dir=dest.parent))
    try:
        with zipfile.ZipFile(archive) as zf:
            for name in zf.namelist():
                member = PurePosixPath(name)
                if member.is_absolute() or ".." in member.parts:
                    raise FetchError(f"{archive}: unsafe member path {name!r}")
            zf.extractall(tmp)
        root = _find_root(tmp)
        _move_into_place(root, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _install_folder(source: Path, dest: Path) -> None:
    root = _find_root(source)
    tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(dest), dir=dest.parent))
    try:
        copy = tmp / "spider"
        shutil.copytree(root, copy)
        _move_into_place(copy, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _move_into_place(folder: Path, dest: Path) -> None:
    if dest.exists():
        dest.rmdir()  # empty (checked by the caller)
    os.rename(folder, dest)
    log.info("Spider installed at %s", dest)
