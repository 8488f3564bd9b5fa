"""Model providers behind one interface: `get_backend(name, **kwargs).generate(requests)`."""

from t2s_bench.backends.base import (
    BACKENDS,
    Backend,
    Generation,
    GenerationRequest,
    get_backend,
    register_backend,
)

__all__ = ["BACKENDS", "Backend", "Generation", "GenerationRequest", "get_backend", "register_backend"]
