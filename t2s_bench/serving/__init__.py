"""Serving: the SQL validation layer, the FastAPI service of `t2s-bench serve`, and the Streamlit demo.

validation.py (sqlglot checks) · schemas.py (schemas given with a request) · databases.py (served
databases) · generation.py (one shared model, batched, confidence) · service.py (the service without
HTTP) · models.py (request/response bodies) · app.py (FastAPI) · client.py (in-process or HTTP client)
· launch.py (a server in a thread) · demo_app.py (the Streamlit page). See docs/SERVING.md.
"""

from t2s_bench.serving.validation import ValidationIssue, ValidationResult, validate_sql

__all__ = ["ValidationIssue", "ValidationResult", "validate_sql"]
