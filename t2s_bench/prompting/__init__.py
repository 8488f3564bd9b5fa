"""Prompts: versioned Jinja templates and schema serialisers."""

from t2s_bench.prompting.schema_text import FORMATS, serialize_schema
from t2s_bench.prompting.templates import (
    DEFAULT_TEMPLATE,
    FewShotExample,
    PromptTemplate,
    available_templates,
    load_follow_up,
    load_template,
)

__all__ = [
    "FORMATS", "serialize_schema", "DEFAULT_TEMPLATE", "FewShotExample", "PromptTemplate",
    "available_templates", "load_follow_up", "load_template",
]
