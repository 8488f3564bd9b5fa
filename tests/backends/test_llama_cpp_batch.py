"""Batched decoding in parallel llama.cpp sequences (`parallel > 1`) against the sequential path."""

import pytest

from t2s_bench.backends import GenerationRequest, get_backend
from t2s_bench.backends.llama_cpp_batch import common_prefix_length, ends_in_incomplete_utf8

SCHEMA_A = "Write one SQLite query.\nCREATE TABLE singer (singer_id INTEGER, name TEXT, age INTEGER);"
SCHEMA_B = "Write one SQLite query.\nCREATE TABLE stadium (stadium_id INTEGER, location TEXT, capacity INTEGER);"
QUESTIONS = [
    "How many singers are there?",
    "List the names of singers older than 30, by age.",
    "Oldest?",
    "What is the average age of all singers?",
    "Show the name of every singer whose age is above the average.",
]


def _req(system, question, max_tokens=10, stop=None):
    return GenerationRequest([{"role": "system", "content": system}, {"role": "user", "content": question}],
                             max_tokens, stop)


def _same(got, want):
    assert [g.error for g in got] == [w.error for w in want]
    assert [g.text for g in got] == [w.text for w in want]
    assert [g.completion_tokens for g in got] == [w.completion_tokens for w in want]
    assert [g.prompt_tokens for g in got] == [w.prompt_tokens for w in want]
    assert [g.finish_reason for g in got] == [w.finish_reason for w in want]


@pytest.fixture(scope="module")
def sequential(tiny_model):
    pytest.importorskip("llama_cpp")
    backend = get_backend("llama-cpp", model=tiny_model.gguf_path, n_ctx=512, n_threads=1, parallel=1)
    yield backend
    backend.close()


@pytest.fixture()
def batched(tiny_model):
    pytest.importorskip("llama_cpp")
    backend = get_backend("llama-cpp", model=tiny_model.gguf_path, n_ctx=512, n_threads=1, parallel=4)
    yield backend
    backend.close()


def test_batched_equals_sequential_for_a_shared_system_message(sequential, batched):
    reqs = [_req(SCHEMA_A, q, max_tokens=12) for q in QUESTIONS]  # 5 requests, 4 sequences: one waits
    want = sequential.generate(reqs)
    got = batched.generate(reqs)
    _same(got, want)
    assert all(g.completion_tokens > 0 and g.latency_s > 0 for g in got)
    assert batched.config()["params"]["parallel"] == 4
    assert sequential.config()["params"]["parallel"] == 1


def test_batched_groups_requests_with_different_prefixes_and_keeps_order(sequential, batched):
    reqs = [_req(SCHEMA_A, QUESTIONS[0]), _req(SCHEMA_B, "How many stadiums?"), _req(SCHEMA_A, QUESTIONS[1]),
            _req(SCHEMA_B, "Largest capacity?"), GenerationRequest([{"role": "user", "content": "Say hi."}], 6)]
    _same(batched.generate(reqs), [sequential.generate([r])[0] for r in reqs])


def test_batched_respects_each_max_tokens(sequential, batched):
    reqs = [_req(SCHEMA_A, q, max_tokens=m) for q, m in zip(QUESTIONS, [1, 3, 7, 2, 20])]
    got = batched.generate(reqs)
    for req, gen in zip(reqs, got):
        assert gen.completion_tokens <= req.max_tokens
        if gen.completion_tokens == req.max_tokens:
            assert gen.finish_reason == "length"
    assert got[0].completion_tokens == 1
    _same(got, sequential.generate(reqs))


def test_batched_stop_strings_cut_the_text(sequential, batched):
    free = batched.generate([_req(SCHEMA_A, QUESTIONS[1], max_tokens=16)])[0].text
    stop = free[len(free) // 2: len(free) // 2 + 2]
    assert stop.strip(), f"need a visible stop string in {free!r}"
    reqs = [_req(SCHEMA_A, QUESTIONS[1], max_tokens=16, stop=[stop]), _req(SCHEMA_A, QUESTIONS[0], max_tokens=16)]
    got = batched.generate(reqs)
    assert got[0].text == free[: free.find(stop)] and got[0].finish_reason == "stop"
    assert got[0].completion_tokens < 16
    _same(got, sequential.generate(reqs))


def test_batched_over_long_prompt_is_a_per_request_error(sequential, batched):
    long = _req(SCHEMA_A, "SELECT name FROM singer " * 200)
    reqs = [_req(SCHEMA_A, QUESTIONS[0]), long, _req(SCHEMA_A, QUESTIONS[2])]
    got = batched.generate(reqs)
    assert got[1].error and "context window" in got[1].error and got[1].text == ""
    assert got[0].error is None and got[2].error is None
    _same(got, sequential.generate(reqs))


def test_batched_reuses_the_prefix_on_the_next_call(batched):
    reqs = [_req(SCHEMA_A, q) for q in QUESTIONS[:3]]
    tokens = [batched.tokenize_chat(r.messages) for r in reqs]
    shared = min(common_prefix_length(tokens[0], t) for t in tokens[1:])
    # the shared prefix kept is at most the system turn (the same for every call: see _load_prefix)
    shared = min(shared, batched._system_turn_length(reqs[0].messages, tokens[0]))
    first = batched.generate(reqs)
    assert batched.prefix_stats == {"prompt_tokens": sum(map(len, tokens)), "reused_tokens": 2 * shared}
    again = batched.generate(reqs)
    # the second call takes the whole shared prefix from the cache, for every request
    assert batched.prefix_stats["reused_tokens"] == 2 * shared + 3 * shared
    assert [g.text for g in again] == [g.text for g in first]


def test_batched_waits_for_kv_room(tiny_model, sequential):
    # 256 cells: the shared prefix plus two requests' suffix + 60 new tokens each; the rest wait
    small = get_backend("llama-cpp", model=tiny_model.gguf_path, n_ctx=256, n_threads=1, parallel=4)
    try:
        reqs = [_req(SCHEMA_A, q, max_tokens=60) for q in QUESTIONS]
        _same(small.generate(reqs), sequential.generate(reqs))
    finally:
        small.close()


def test_batched_latencies_add_up_to_the_call(batched):
    import time

    reqs = [_req(SCHEMA_A, q) for q in QUESTIONS]
    t0 = time.perf_counter()
    got = batched.generate(reqs)
    wall = time.perf_counter() - t0
    assert sum(g.latency_s for g in got) == pytest.approx(wall, rel=0.1)


def test_naive_mode_stays_one_at_a_time(tiny_model):
    pytest.importorskip("llama_cpp")
    naive = get_backend("llama-cpp", model=tiny_model.gguf_path, n_ctx=512, n_threads=1, reuse_prefix=False, parallel=4)
    try:
        assert naive.config()["params"]["parallel"] == 1
        naive.generate([_req(SCHEMA_A, q) for q in QUESTIONS[:2]])
        assert naive.prefix_stats["reused_tokens"] == 0
    finally:
        naive.close()


def test_incomplete_utf8_tail():
    assert not ends_in_incomplete_utf8(b"")
    assert not ends_in_incomplete_utf8("SELECT é".encode())
    assert ends_in_incomplete_utf8("é".encode()[:1])
    assert ends_in_incomplete_utf8("€".encode()[:2])
    assert not ends_in_incomplete_utf8("€".encode())
    assert ends_in_incomplete_utf8(b"ab" + "😀".encode()[:3])
    assert not ends_in_incomplete_utf8(b"ab" + "😀".encode())


@pytest.mark.model
def test_real_qwen_batched_writes_the_same_sql_as_sequential(qwen_gguf):
    pytest.importorskip("llama_cpp")
    system = ("Answer with one SQLite query only.\n"
              "CREATE TABLE singer (singer_id INTEGER PRIMARY KEY, name TEXT, country TEXT, age INTEGER);")
    reqs = [_req(system, q, max_tokens=40) for q in
            ["How many singers are there?", "List the names of singers from France.", "What is the maximum age?"]]
    with get_backend("llama-cpp", model=qwen_gguf, n_ctx=1024, n_threads=2, parallel=1) as one:
        want = one.generate(reqs)
    with get_backend("llama-cpp", model=qwen_gguf, n_ctx=1024, n_threads=2, parallel=4) as batched:
        got = batched.generate(reqs)
        again = batched.generate(reqs)
        # the second call evaluates only each request's own suffix
        assert batched.prefix_stats["reused_tokens"] >= 4 * batched.count_tokens(reqs[0].messages[:1]) - 4
    assert all(g.error is None and g.finish_reason == "stop" and "select" in g.text.lower() for g in got)
    assert [g.text for g in got] == [g.text for g in want] == [g.text for g in again]


def test_parallel_width_follows_the_share_of_the_prompt_that_is_shared(batched):
    from t2s_bench.backends.llama_cpp_batch import BatchItem

    prefix = list(range(100))
    short = [BatchItem(prefix + [7] * 20, 8, None), BatchItem(prefix + [9] * 30, 8, None)]
    long_ = [BatchItem(prefix + [7] * 400, 8, None), BatchItem(prefix + [9] * 300, 8, None)]
    assert batched._decoder.width(prefix, short) == 4  # zero-shot shape: schema shared, question own
    assert batched._decoder.width(prefix, long_) == 1  # few-shot shape: examples own, decode one at a time
