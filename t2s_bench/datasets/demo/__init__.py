"""The demo dataset shipped with the package: three small databases and 48 Spider-style questions."""

from t2s_bench.datasets.demo.demo import DEMO_DBS, build_demo, load_demo

__all__ = ["DEMO_DBS", "build_demo", "load_demo"]
