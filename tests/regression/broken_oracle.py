"""A deliberately worse system for the regression tests: the oracle, answering chosen questions wrong.

Written as a t2s-bench plugin (registered with `register_system`), so benchmark files and the `t2s`
fixture use it by name; the tests copy this file into their pytester folders as a conftest.py.

    broken-oracle  wrong=[0, 5, 9]  how=syntax|no_rows

`syntax` breaks the SELECT keyword (error class syntax_error); `no_rows` wraps the gold query so it
returns nothing (a wrong result; gold queries of the demo data all return rows).
"""

from __future__ import annotations

from t2s_bench.records import Prediction, Task
from t2s_bench.systems.base import register_system

BREAKS = {
    "syntax": lambda gold: gold.replace("SELECT", "SELEC", 1),
    "no_rows": lambda gold: f"SELECT * FROM ({gold}) WHERE 0",
}


class BrokenOracle:
    name = "broken-oracle"

    def __init__(self, wrong=(), how="syntax"):
        if how not in BREAKS:
            raise ValueError(f"how must be one of {sorted(BREAKS)}")
        self.wrong = sorted(int(i) for i in wrong)
        self.how = how

    def predict(self, tasks: list[Task]) -> list[Prediction]:
        out = []
        for t in tasks:
            gold = t.example.query
            sql = BREAKS[self.how](gold) if t.example.index in self.wrong else gold
            out.append(Prediction(t.example.index, t.example.db_id, sql, raw_output=sql))
        return out

    def config(self) -> dict:
        return {"system": "broken-oracle", "wrong": self.wrong, "how": self.how}


@register_system("broken-oracle", replace=True)
def broken_oracle(wrong=(), how="syntax", dataset_name=None) -> BrokenOracle:
    return BrokenOracle(wrong=wrong, how=how)
