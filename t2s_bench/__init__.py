"""t2s-bench: honest, reproducible text-to-SQL benchmarking."""

__version__ = "0.1.0"
