"""Prompts: versioned Jinja templates, schema serialisers and the per-question schema view (`schema_for`)."""

from t2s_bench.prompting.schema_text import FORMATS, serialize_schema
from t2s_bench.prompting.schema_view import SCHEMA_MODES, SchemaOptions, SchemaView, schema_for
from t2s_bench.prompting.templates import (
    DEFAULT_TEMPLATE,
    FewShotExample,
    PromptTemplate,
    available_templates,
    load_follow_up,
    load_template,
)

__all__ = [
    "FORMATS", "serialize_schema", "SCHEMA_MODES", "SchemaOptions", "SchemaView", "schema_for", "DEFAULT_TEMPLATE", "FewShotExample", "PromptTemplate",
    "available_templates", "load_follow_up", "load_template",
]
