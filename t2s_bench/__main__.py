import sys

from t2s_bench.cli import main

sys.exit(main())
