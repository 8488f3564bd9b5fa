"""`python -m t2s_bench.cli` is the `t2s-bench` command."""

import sys

from t2s_bench.cli import main

sys.exit(main())
