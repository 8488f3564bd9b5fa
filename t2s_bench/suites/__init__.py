"""Test suites of databases: test-suite execution accuracy and building suites for any dataset.

- `execute.py`: score predictions on every variant of a suite (`--suite DIR`, metric ``exec_suite``);
- `mutants.py`: near-miss mutants of a gold query (sqlglot);
- `fuzz.py`: neighbour databases from a database's schema and the values gold queries mention;
- `distill.py`: keep the neighbours that kill the mutants surviving the original database;
- `build.py`: a whole dataset's suite in the official distilled layout, with its manifest.

See docs/SCORING.md ("Test suites") for how built suites differ from the official ones.
"""
