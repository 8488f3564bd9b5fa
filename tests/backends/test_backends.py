
import pytest

from t2s_bench.backends import BACKENDS, Backend, GenerationRequest, get_backend, register_backend
from t2s_bench.backends.base import truncate_at_stop
from t2s_bench.testing.chat_server import ChatServer

SYSTEM = "Write one SQLite query.\nCREATE TABLE singer (singer_id INTEGER, name TEXT, age INTEGER);"
QUESTIONS = ["How many singers are there?", "List the names of singers older than 30, by age.", "Oldest?"]


def _requests(max_tokens=10, stop=None):
    return [
        GenerationRequest([{"role": "system", "content": SYSTEM}, {"role": "user", "content": q}], max_tokens, stop)
        for q in QUESTIONS
    ]


# ---------------------------------------------------------------- registry and helpers


def test_registry_knows_builtins_and_rejects_unknown():
    with pytest.raises(ValueError, match="unknown backend 'no-such-backend'; known: llama-cpp, openai, transformers, vllm"):
        get_backend("no-such-backend")


def test_register_backend_refuses_a_second_class_under_one_name():
    @register_backend("test-dummy")
    class Dummy(Backend):
        def generate(self, requests):
            return []

        def count_tokens(self, messages):
            return 0

        def config(self):
            return {}

    assert BACKENDS.get("test-dummy") is Dummy and Dummy.name == "test-dummy"
    with pytest.raises(ValueError, match="already registered"):
        register_backend("test-dummy")(type("Other", (Dummy,), {}))
    BACKENDS.unregister("test-dummy")


def test_truncate_at_stop_takes_the_earliest():
    assert truncate_at_stop("SELECT 1;\n```\nmore", ["```", ";"]) == ("SELECT 1", True)
    assert truncate_at_stop("SELECT 1", ["```"]) == ("SELECT 1", False)
    assert truncate_at_stop("SELECT 1", None) == ("SELECT 1", False)


# ---------------------------------------------------------------- llama-cpp


@pytest.fixture(scope="module")
def tiny_llama(tiny_model):
    pytest.importorskip("llama_cpp")
    backend = get_backend("llama-cpp", model=tiny_model.gguf_path, n_ctx=512, n_threads=1)
    yield backend
    backend.close()


def test_llama_cpp_generates_greedily_with_token_counts(tiny_llama):
    reqs = _requests()
    first = tiny_llama.generate(reqs)
    again = tiny_llama.generate(reqs)
    assert [g.text for g in first] == [g.text for g in again]
    for req, gen in zip(reqs, first):
        assert gen.error is None
        assert gen.prompt_tokens == tiny_llama.count_tokens(req.messages)
        assert 0 < gen.completion_tokens <= req.max_tokens
        assert gen.latency_s > 0
    assert tiny_llama.render(reqs[0].messages).endswith("<|im_start|>assistant\n")


def test_llama_cpp_prefix_reuse_changes_work_not_output(tiny_model, tiny_llama):
    reqs = _requests()
    naive = get_backend("llama-cpp", model=tiny_model.gguf_path, n_ctx=512, n_threads=1, reuse_prefix=False)
    try:
        naive_out = naive.generate(reqs)
        assert naive.prefix_stats["reused_tokens"] == 0
    finally:
        naive.close()
    before = dict(tiny_llama.prefix_stats)
    reuse_out = tiny_llama.generate(reqs)
    shared = tiny_llama.count_tokens([{"role": "system", "content": SYSTEM}])
    # every request after the first reuses at least the system turn
    assert tiny_llama.prefix_stats["reused_tokens"] - before["reused_tokens"] >= 2 * (shared - 3)
    assert [g.text for g in reuse_out] == [g.text for g in naive_out]
    assert naive.config()["params"]["reuse_prefix"] is False


def test_llama_cpp_reports_prompt_too_long(tiny_llama):
    long = [{"role": "user", "content": "SELECT name FROM singer " * 200}]
    (gen,) = tiny_llama.generate([GenerationRequest(long, 5)])
    assert gen.error and "context window" in gen.error and gen.text == ""


def test_llama_cpp_config_identifies_the_file(tiny_model, tiny_llama):
    cfg = tiny_llama.config()
    assert cfg["backend"] == "llama-cpp"
    assert cfg["model_size"] == tiny_model.gguf_path.stat().st_size
    assert len(cfg["model_sha256"]) == 64
    assert cfg["params"]["temperature"] == 0.0


# ---------------------------------------------------------------- transformers


@pytest.fixture(scope="module")
def tiny_hf(tiny_model):
    return get_backend("transformers", model=tiny_model.hf_dir, batch_size=2)


def test_transformers_batched_equals_one_at_a_time(tiny_hf):
    reqs = _requests(max_tokens=8)
    batched = tiny_hf.generate(reqs)
    single = [tiny_hf.generate([r])[0] for r in reqs]
    assert [g.text for g in batched] == [g.text for g in single]
    for req, gen in zip(reqs, batched):
        assert gen.prompt_tokens == tiny_hf.count_tokens(req.messages)
        assert gen.completion_tokens == 8 and gen.finish_reason == "length"


def test_transformers_matches_llama_cpp_on_the_same_weights(tiny_hf, tiny_llama):
    reqs = _requests(max_tokens=8)
    hf = tiny_hf.generate(reqs)
    ll = tiny_llama.generate(reqs)
    assert [g.prompt_tokens for g in hf] == [g.prompt_tokens for g in ll]
    # llama.cpp drops incomplete UTF-8 pieces that transformers shows as U+FFFD
    assert [g.text.replace("\ufffd", "") for g in hf] == [g.text for g in ll]


def test_transformers_loads_a_gguf_file(tiny_model, tiny_hf):
    from_gguf = get_backend("transformers", model=tiny_model.gguf_path, batch_size=3)
    reqs = _requests(max_tokens=6)
    assert [g.text for g in from_gguf.generate(reqs)] == [g.text for g in tiny_hf.generate(reqs)]
    cfg = from_gguf.config()
    assert cfg["gguf_file"] == tiny_model.gguf_path.name and cfg["params"]["dtype"] == "float32"


def test_transformers_stop_strings_cut_the_text(tiny_hf):
    free = tiny_hf.generate(_requests(max_tokens=12))[1].text
    stop = free[4:6]
    (gen,) = tiny_hf.generate([_requests(max_tokens=12, stop=[stop])[1]])
    assert gen.text == free[: free.find(stop)]
    assert gen.finish_reason == "stop"


def test_transformers_with_peft_adapter(tiny_model, tiny_hf, tmp_path):
    peft = pytest.importorskip("peft")
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model.hf_dir)
    lora = peft.get_peft_model(
        base, peft.LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    )
    lora.save_pretrained(tmp_path / "adapter")
    tuned = get_backend("transformers", model=tiny_model.hf_dir, adapter=tmp_path / "adapter")
    reqs = _requests(max_tokens=8)
    assert [g.text for g in tuned.generate(reqs)] != [g.text for g in tiny_hf.generate(reqs)]
    assert tuned.config()["adapter_sha256"] and tiny_hf.config()["adapter"] is None


# ---------------------------------------------------------------- OpenAI-compatible HTTP


# the real loopback server lives in t2s_bench.testing (shared with the sampling tests)
_ChatServer = ChatServer


def test_openai_backend_round_trip(tiny_llama, monkeypatch):
    monkeypatch.setenv("T2S_TEST_KEY", "sk-test")
    server = _ChatServer(tiny_llama)
    try:
        client = get_backend("openai", model="tiny", base_url=server.url, api_key_env="T2S_TEST_KEY", concurrency=3)
        reqs = _requests(max_tokens=6)
        got = client.generate(reqs)
        want = tiny_llama.generate(reqs)
        assert [g.text for g in got] == [g.text for g in want]  # order kept despite concurrency
        assert [g.prompt_tokens for g in got] == [g.prompt_tokens for g in want]
        assert all(g.error is None and g.completion_tokens > 0 for g in got)
        assert set(server.auth) == {"Bearer sk-test"}
        assert client.config()["base_url"] == server.url
    finally:
        server.close()


def test_openai_backend_retries_429_then_succeeds(tiny_llama):
    server = _ChatServer(tiny_llama, fail_first=2, fail_status=429)
    try:
        client = get_backend("openai", model="tiny", base_url=server.url, backoff_s=0.01, concurrency=1)
        (gen,) = client.generate(_requests(max_tokens=4)[:1])
        assert gen.error is None and gen.text
        assert server.calls == 3
    finally:
        server.close()


def test_openai_backend_gives_up_on_client_errors_without_retry(tiny_llama):
    server = _ChatServer(tiny_llama, fail_first=5, fail_status=400)
    try:
        client = get_backend("openai", model="tiny", base_url=server.url, backoff_s=0.01)
        (gen,) = client.generate(_requests()[:1])
        assert gen.error.startswith("HTTP 400") and gen.text == ""
        assert server.calls == 1
    finally:
        server.close()


def test_openai_backend_unreachable_server_is_a_per_request_error():
    client = get_backend("openai", model="x", base_url="http://127.0.0.1:9/v1", max_retries=1, backoff_s=0.01, timeout_s=2)
    gens = client.generate(_requests()[:2])
    assert all(g.error and "ConnectionError" in g.error for g in gens)


# ---------------------------------------------------------------- the real model


@pytest.mark.model
def test_real_qwen_writes_sql(qwen_gguf):
    pytest.importorskip("llama_cpp")
    with get_backend("llama-cpp", model=qwen_gguf, n_ctx=1024, n_threads=2) as backend:
        (gen,) = backend.generate([GenerationRequest(
            [{"role": "system", "content": "Answer with one SQLite query only.\n"
              "CREATE TABLE singer (singer_id INTEGER PRIMARY KEY, name TEXT, age INTEGER);"},
             {"role": "user", "content": "How many singers are there?"}], max_tokens=40)])
        assert "select" in gen.text.lower() and "singer" in gen.text.lower()
        assert gen.finish_reason == "stop"
        assert backend.config()["model_sha256"].startswith("1d9614638d18")


def test_an_adapter_is_identified_by_its_weights_and_config_only(tmp_path):
    from t2s_bench.backends.catalog import adapter_sha256

    (tmp_path / "adapter_config.json").write_text("{}")
    (tmp_path / "adapter_model.safetensors").write_bytes(b"weights")
    before = adapter_sha256(tmp_path)
    (tmp_path / "checkpoint").mkdir()
    (tmp_path / "checkpoint" / "state.pt").write_bytes(b"resume state")
    (tmp_path / "train_summary.json").write_text('{"steps": 3}')
    assert adapter_sha256(tmp_path) == before
    (tmp_path / "adapter_model.safetensors").write_bytes(b"other weights")
    assert adapter_sha256(tmp_path) != before
