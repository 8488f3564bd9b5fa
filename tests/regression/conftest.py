"""Fixtures of the regression-plugin tests: pytester folders with the worse system, and an oracle baseline.

pytester itself is enabled in each test module (`pytest_plugins = ["pytester"]`): pytest refuses
`pytest_plugins` in a conftest below the rootdir when the whole suite is collected.
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.fixture
def suite(pytester):
    """A pytester folder whose conftest registers the `broken-oracle` system."""
    pytester.makeconftest((HERE / "broken_oracle.py").read_text())
    return pytester


@pytest.fixture(scope="session")
def oracle_run(tmp_path_factory):
    """The oracle over all 48 demo questions (every answer right)."""
    import t2s_bench as t

    return t.evaluate("oracle", "demo", out=tmp_path_factory.mktemp("runs") / "oracle")


@pytest.fixture(scope="session")
def oracle_baseline(oracle_run, tmp_path_factory):
    """The oracle's baseline file."""
    from t2s_bench.regression.baseline import save_baseline

    return save_baseline(oracle_run, tmp_path_factory.mktemp("baselines") / "oracle.json", with_sql=True)


@pytest.fixture(scope="session")
def broken_oracle():
    """The worse system's class, for runs made outside pytester: `broken_oracle(wrong=[...], how=...)`."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("broken_oracle_for_tests", HERE / "broken_oracle.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.BrokenOracle
