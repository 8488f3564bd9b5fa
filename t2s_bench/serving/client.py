"""One interface to the SQL service for the demo: in-process (`LocalClient`) or over HTTP (`HttpClient`).

Both return plain dicts shaped like the API's JSON bodies and raise `ClientError(status, detail, body)`
for refused requests, so the demo renders both the same way.
"""

from __future__ import annotations

from pathlib import Path

# the demo's settings (JSON: system, system_options, datasets, db_files, api, token), set by `t2s-bench demo`
DEMO_CONFIG_ENV = "T2S_DEMO_CONFIG"


class ClientError(Exception):
    def __init__(self, status: int, detail: str, body: dict | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.body = status, detail, body or {}


class LocalClient:
    """The service in this process: the model is loaded here, once."""

    can_upload = True

    def __init__(self, service) -> None:
        self.service = service

    @classmethod
    def build(cls, system: str = "zero-shot", system_options: dict | None = None,
              datasets: list[str] | tuple[str, ...] = ("demo", "spider-dev"), db_files: list[str] = ()) -> LocalClient:
        from t2s_bench.serving.databases import DatabaseCatalog
        from t2s_bench.serving.service import SQLService, build_systems

        catalog = DatabaseCatalog.from_sources(list(datasets), list(db_files), optional=("spider-dev",))
        return cls(SQLService(build_systems(system, system_options), catalog))

    def _call(self, fn, *args):
        from t2s_bench.serving.service import ServiceError

        try:
            return fn(*args)
        except ServiceError as e:
            raise ClientError(e.status, e.detail, {"detail": e.detail, **e.extra}) from None

    def info(self) -> dict:
        name = self.service.default_system
        system = self.service.generators[name].system
        backend = getattr(system, "backend", None)
        model = getattr(backend, "model_id", None) or getattr(backend, "model_path", None)
        return {"system": name, "model": str(model) if model else None}

    def databases(self) -> list[dict]:
        return [db.summary() for db in self.service.catalog.all()]

    def schema(self, db_id: str) -> dict:
        return self.service.catalog.get(db_id).schema.to_tables_json()

    def generate(self, question: str, db_id: str) -> dict:
        from t2s_bench.serving.models import GenerateRequest

        request = GenerateRequest(question=question, db_id=db_id)
        return self._call(self.service.generate_sql, request).model_dump()

    def execute(self, db_id: str, sql: str, max_rows: int = 200) -> dict:
        from t2s_bench.serving.models import ExecuteRequest

        return self._call(self.service.execute, ExecuteRequest(db_id=db_id, sql=sql, max_rows=max_rows)).model_dump()

    def add_database(self, path: str | Path, db_id: str) -> dict:
        if db_id in self.service.catalog:
            return self.service.catalog.get(db_id).summary()
        return self.service.catalog.add_file(path, db_id).summary()


class HttpClient:
    """A running `t2s-bench serve` at `url` (uploads are not sent to a remote server)."""

    can_upload = False

    def __init__(self, url: str, token: str | None = None, timeout: float = 300.0) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout)

    def _json(self, response) -> dict | list:
        try:
            body = response.json()
        except ValueError:
            body = {"detail": response.text[:500]}
        if response.status_code >= 400:
            detail = body.get("detail") if isinstance(body, dict) else str(body)
            raise ClientError(response.status_code, str(detail), body if isinstance(body, dict) else {})
        return body

    def info(self) -> dict:
        body = self._json(self.http.get("/systems"))
        loaded = body["loaded"].get(body["default"], {})
        backend = loaded.get("backend") if isinstance(loaded.get("backend"), dict) else loaded
        return {"system": body["default"], "model": (backend or {}).get("model")}

    def databases(self) -> list[dict]:
        return self._json(self.http.get("/databases"))

    def schema(self, db_id: str) -> dict:
        return self._json(self.http.get(f"/databases/{db_id}/schema"))["schema"]

    def generate(self, question: str, db_id: str) -> dict:
        return self._json(self.http.post("/generate_sql", json={"question": question, "db_id": db_id}))

    def execute(self, db_id: str, sql: str, max_rows: int = 200) -> dict:
        return self._json(self.http.post("/execute", json={"db_id": db_id, "sql": sql, "max_rows": max_rows}))

    def add_database(self, path, db_id):
        raise ClientError(400, "uploading a database needs the in-process demo (run `t2s-bench demo` without --api)")
