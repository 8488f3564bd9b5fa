"""Benchmark files (`*.t2s.yaml`, `*.t2s.toml`): parse and check them into cases.

    defaults:                 # optional, merged under every case
      dataset: demo
    cases:
      - name: oracle          # the test id: bench.t2s.yaml::oracle (default: the system's name)
        system: oracle
        min_ex: 1.0
      - name: zero-shot-0.5b
        system: zero-shot
        options: {model: qwen2.5-coder-0.5b-gguf, max_new_tokens: 128}
        sample: 12
        seed: 0
        min_ex: 0.3
        by_hardness: {easy: 0.5}
        max_error_rate: {syntax_error: 0.1}
        p95_s: 30
        baseline: baselines/zero-shot.json   # relative to this file
        alpha: 0.05
        max_drop: 0.25

TOML: a `[defaults]` table and `[[cases]]` tables with the same keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SELECTION_KEYS = {"dataset", "sample", "seed", "limit", "hardness", "databases"}
RUN_KEYS = {"batch_size", "workers", "timeout"}
THRESHOLD_KEYS = {"min_ex", "min_em", "by_hardness", "max_error_rate", "p50_s", "p95_s"}
REGRESSION_KEYS = {"baseline", "alpha", "max_drop", "metric"}
OTHER_KEYS = {"name", "system", "options", "backend_options", "requires", "marks"}
KNOWN_KEYS = SELECTION_KEYS | RUN_KEYS | THRESHOLD_KEYS | REGRESSION_KEYS | OTHER_KEYS
REQUIREMENTS = {"gpu"}


class CaseFileError(ValueError):
    """A benchmark file that cannot be read: the message names the file, the case and the key."""


@dataclass
class Case:
    name: str
    system: str
    options: dict = field(default_factory=dict)
    backend_options: dict = field(default_factory=dict)
    dataset: str = "demo"
    sample: int | None = None
    seed: int = 0
    limit: int | None = None
    hardness: list[str] | None = None
    databases: list[str] | None = None
    batch_size: int = 8
    workers: int = 2
    timeout: float = 30.0
    min_ex: float | None = None
    min_em: float | None = None
    by_hardness: dict | None = None
    max_error_rate: dict | None = None
    p50_s: float | None = None
    p95_s: float | None = None
    baseline: str | None = None
    alpha: float = 0.05
    max_drop: float | None = None
    metric: str = "exec"
    requires: list[str] = field(default_factory=list)
    marks: list[str] = field(default_factory=list)

    def evaluate_kwargs(self) -> dict:
        """Keyword arguments of `T2S.evaluate` (the API's names)."""
        return dict(dataset=self.dataset, sample=self.sample, sample_seed=self.seed, limit=self.limit,
                    hardness=self.hardness, db=self.databases, batch_size=self.batch_size, workers=self.workers,
                    timeout=self.timeout, backend_options=self.backend_options, requires=self.requires,
                    **self.options)

    def has_checks(self) -> bool:
        return any(getattr(self, k) is not None for k in THRESHOLD_KEYS) or self.baseline is not None


def read_file(path: Path) -> dict:
    """The raw mapping of a YAML or TOML benchmark file."""
    try:
        if path.suffix == ".toml":
            import tomllib

            data = tomllib.loads(path.read_text(encoding="utf-8"))
        else:
            import yaml

            data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except Exception as e:  # yaml.YAMLError, tomllib.TOMLDecodeError, UnicodeDecodeError
        raise CaseFileError(f"{path}: cannot be parsed: {e}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise CaseFileError(f"{path}: expected a mapping with a `cases` list, got {type(data).__name__}")
    return data


def load_cases(path: str | Path) -> list[Case]:
    path = Path(path)
    data = read_file(path)
    unknown_top = set(data) - {"defaults", "cases"}
    if unknown_top:
        raise CaseFileError(f"{path}: unknown top-level key{'s' if len(unknown_top) > 1 else ''} "
                            f"{', '.join(sorted(unknown_top))}; a benchmark file has `defaults` and `cases`")
    defaults = data.get("defaults") or {}
    raw_cases = data.get("cases")
    if not isinstance(defaults, dict):
        raise CaseFileError(f"{path}: `defaults` must be a mapping")
    if not isinstance(raw_cases, list) or not raw_cases:
        raise CaseFileError(f"{path}: `cases` must be a non-empty list of cases")
    cases, seen = [], set()
    for number, raw in enumerate(raw_cases, 1):
        if not isinstance(raw, dict):
            raise CaseFileError(f"{path}: case {number} must be a mapping, got {raw!r}")
        case = _make_case({**defaults, **raw}, f"{path}: case {raw.get('name') or number}")
        if not raw.get("name"):  # default id: the system's name, numbered when repeated
            base, k = case.name, 2
            while case.name in seen:
                case.name, k = f"{base}-{k}", k + 1
        if case.name in seen:
            raise CaseFileError(f"{path}: two cases are named {case.name!r}")
        seen.add(case.name)
        cases.append(case)
    return cases


def _make_case(raw: dict, where: str) -> Case:
    unknown = set(raw) - KNOWN_KEYS
    if unknown:
        raise CaseFileError(f"{where}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(sorted(unknown))}; "
                            f"known keys: {', '.join(sorted(KNOWN_KEYS))}")
    if not isinstance(raw.get("system"), str) or not raw["system"]:
        raise CaseFileError(f"{where}: `system` (a registered system name) is required")
    values = dict(raw)
    values.setdefault("name", raw["system"])
    values["name"] = str(values["name"])
    for key in ("options", "backend_options", "by_hardness", "max_error_rate"):
        if key in values and values[key] is not None and not isinstance(values[key], dict):
            raise CaseFileError(f"{where}: `{key}` must be a mapping")
    for key in ("options", "backend_options"):
        values[key] = dict(values.get(key) or {})
    for key in ("hardness", "databases", "requires", "marks"):
        value = values.get(key)
        if isinstance(value, str):
            values[key] = [value]
        elif value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise CaseFileError(f"{where}: `{key}` must be a name or a list of names")
    for key in ("requires", "marks"):
        values[key] = values.get(key) or []
    for key in ("sample", "limit", "seed", "batch_size", "workers"):
        value = values.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise CaseFileError(f"{where}: `{key}` must be a whole number, got {value!r}")
    for key in ("min_ex", "min_em", "max_drop"):
        value = values.get(key)
        if value is not None and not (_is_number(value) and 0 <= value <= 1):
            raise CaseFileError(f"{where}: `{key}` is a fraction between 0 and 1, got {value!r}")
    for key in ("alpha", "timeout", "p50_s", "p95_s"):
        value = values.get(key)
        if value is not None and not (_is_number(value) and value > 0):
            raise CaseFileError(f"{where}: `{key}` must be a positive number, got {value!r}")
    if values.get("alpha") is not None and values["alpha"] >= 1:
        raise CaseFileError(f"{where}: `alpha` must be below 1, got {values['alpha']}")
    if values.get("metric", "exec") not in ("exec", "exact"):
        raise CaseFileError(f"{where}: `metric` is exec or exact, got {values['metric']!r}")
    bad = set(values["requires"]) - REQUIREMENTS
    if bad:
        raise CaseFileError(f"{where}: `requires` knows {', '.join(sorted(REQUIREMENTS))}, not {', '.join(sorted(bad))}")
    if values.get("baseline") is not None:
        values["baseline"] = str(values["baseline"])
    return Case(**{k: v for k, v in values.items() if v is not None})


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
