"""The run directory: the one place that reads and writes a run's files.

    runs/<name>/
      config.json             resolved config, config hash, environment        (atomic write)
      predictions.jsonl       one Prediction per line, appended per batch: the resume log
      predictions.jsonl.gz    the same, compressed (committed runs); read transparently
      scores.jsonl            one ScoreRecord per example                       (atomic write)
      metrics.json            summary, throughput, latency                      (atomic write)
      .lock                   held (flock) by the process writing the run

What is cheap to recompute (scores, metrics) can be dropped from a committed run: `t2s-bench score
--run DIR` regenerates both from the predictions, deterministically.
"""

from __future__ import annotations

import errno
import fcntl
import gzip
import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from t2s_bench.files import atomic_write_text
from t2s_bench.records import Prediction, ScoreRecord

CONFIG = "config.json"
PREDICTIONS = "predictions.jsonl"
SCORES = "scores.jsonl"
METRICS = "metrics.json"
LOCK = ".lock"


class RunLockedError(RuntimeError):
    """Another process is writing this run directory."""


class RunDir:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    # ------------------------------------------------------------ paths
    @property
    def config_path(self) -> Path:
        return self.path / CONFIG

    @property
    def predictions_path(self) -> Path:
        """The predictions log; the compressed copy when only that exists."""
        plain = self.path / PREDICTIONS
        packed = self.path / (PREDICTIONS + ".gz")
        return packed if packed.is_file() and not plain.is_file() else plain

    @property
    def scores_path(self) -> Path:
        return self.path / SCORES

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS

    def is_run(self) -> bool:
        return self.config_path.is_file()

    def is_scored(self) -> bool:
        return self.scores_path.is_file() and self.metrics_path.is_file()

    # ------------------------------------------------------------ lock
    @contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive right to write this run; a second writer gets RunLockedError at once.
        The lock is an flock: the kernel releases it when the holder dies, even by SIGKILL."""
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
                raise RunLockedError(
                    f"{self.path} is being written by another process (pid {holder}); wait for it to "
                    "finish or choose another --out"
                ) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the flock

    # ------------------------------------------------------------ config and metrics
    def read_config(self) -> dict[str, Any]:
        return _read_json(self.config_path)

    def write_config(self, config: dict[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.config_path, json.dumps(config, indent=2, default=str) + "\n")

    def read_metrics(self) -> dict[str, Any]:
        return _read_json(self.metrics_path)

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        atomic_write_text(self.metrics_path, json.dumps(metrics, indent=2) + "\n")

    # ------------------------------------------------------------ predictions (the resume log)
    def read_predictions(self) -> dict[int, dict[str, Any]]:
        """Completed predictions by example index; a torn last line (a kill mid-write) is ignored,
        and of duplicate lines the first wins."""
        path = self.predictions_path
        done: dict[int, dict[str, Any]] = {}
        if not path.is_file():
            return done
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue  # torn write from a kill: that example is redone
                if isinstance(rec, dict) and "index" in rec:
                    done.setdefault(int(rec["index"]), rec)
        return done

    def append_predictions(self, predictions: Iterable[Prediction]) -> None:
        """One write() and one fsync per batch, so a kill leaves at most one torn line."""
        blob = "".join(json.dumps(p.to_json(), ensure_ascii=False) + "\n" for p in predictions)
        if not blob:
            return
        with open(self.path / PREDICTIONS, "a", encoding="utf-8") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())

    def repair_predictions_tail(self) -> None:
        """Cut a torn last line so that new appends start on a fresh line."""
        path = self.path / PREDICTIONS
        if not path.is_file() or path.stat().st_size == 0:
            return
        data = path.read_bytes()
        if not data.endswith(b"\n"):
            path.write_bytes(data[: data.rfind(b"\n") + 1])

    def unpack_predictions(self) -> None:
        """Before appending to a committed (compressed) run: the log back in plain text."""
        packed = self.path / (PREDICTIONS + ".gz")
        plain = self.path / PREDICTIONS
        if packed.is_file() and not plain.is_file():
            with gzip.open(packed, "rt", encoding="utf-8") as f:
                atomic_write_text(plain, f.read())
            packed.unlink()

    def pack(self, *, drop_scores: bool = True) -> None:
        """Shrink a finished run for committing: predictions gzipped (deterministic bytes), scores
        dropped (`t2s-bench score --run DIR` regenerates them)."""
        plain = self.path / PREDICTIONS
        if plain.is_file():
            packed = self.path / (PREDICTIONS + ".gz")
            with open(plain, "rb") as src, open(packed, "wb") as raw:
                with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
                    gz.write(src.read())
            plain.unlink()
        if drop_scores:
            self.scores_path.unlink(missing_ok=True)
        (self.path / LOCK).unlink(missing_ok=True)

    # ------------------------------------------------------------ scores
    def read_scores(self) -> list[ScoreRecord]:
        """Score records; a malformed line is an error naming the file and line."""
        return read_records(self.scores_path)  # type: ignore[return-value]

    def write_scores(self, records: Iterable[ScoreRecord]) -> None:
        text = "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in records)
        atomic_write_text(self.scores_path, text)


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """JSON records, one per line (blank lines skipped); a malformed line is an error naming it."""
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{n}: not a JSON score record ({e.msg})") from None
    return out


def write_records(path: str | Path, records: Iterable[ScoreRecord]) -> None:
    """Score records as JSONL at any path (the `score --out` file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in records))


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: invalid JSON ({e.msg}); delete it to start the run again") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return data
