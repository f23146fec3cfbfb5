"""The result cache: location, storage, key, export/import format and its refusals, concurrency."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import diskcache  # type: ignore[import-untyped]
import pytest
import typer
from helpers import ROOT
from typer.testing import CliRunner

from fodhash.cache.export import FORMAT, VERSION, Entry, checksum
from fodhash.cache.store import ResultCache, key_for
from fodhash.cli import cache_app
from fodhash.errors import UsageError
from fodhash.files.dirs import cache_dir
from fodhash.hashes.encoding import Algo, Hash, nix32_encode
from fodhash.nix.derivations import parse_drv

LINUX = "x86_64-linux"
DARWIN = "aarch64-darwin"


def sha256(seed: str) -> Hash:
    return Hash(Algo.SHA256, hashlib.sha256(seed.encode()).digest())


def entry(seed: str, platform: str = LINUX, *, value: str | None = None,
          when: float = 1_700_000_000.5) -> Entry:
    return Entry(key=hashlib.sha256(f"key-{seed}".encode()).hexdigest(),
                 hash=sha256(value if value is not None else seed), platform=platform,
                 name=f"{seed}-deps", nix_version="2.18.1", time=when)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ResultCache]:
    result = ResultCache(tmp_path / "store")
    yield result
    result.close()


def fill(target: ResultCache, *entries: Entry) -> None:
    for item in entries:
        target.put(item)


def write_doc(path: Path, raws: list[dict[str, Any]], **top: Any) -> Path:
    """An export file with a correct checksum unless `top` overrides a field."""
    document = {"format": FORMAT, "version": VERSION, "entries": raws,
                "checksum": checksum(raws), **top}
    path.write_text(json.dumps(document, indent=2))
    return path


# --- location --------------------------------------------------------------------------------


def test_cache_dir_prefers_fodhash_cache_dir(monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    monkeypatch.setenv("FODHASH_CACHE_DIR", str(tmp_path / "own"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "own"


def test_cache_dir_falls_back_to_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("FODHASH_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "fodhash"


@pytest.mark.parametrize("xdg", [None, "", "relative/dir"], ids=["unset", "empty", "relative"])
def test_cache_dir_falls_back_to_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                      xdg: str | None) -> None:
    monkeypatch.setenv("FODHASH_CACHE_DIR", "")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    if xdg is None:
        monkeypatch.delenv("XDG_CACHE_HOME")
    else:
        monkeypatch.setenv("XDG_CACHE_HOME", xdg)
    assert cache_dir() == tmp_path / "home" / ".cache" / "fodhash"


def test_default_cache_opens_in_cache_dir(monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
    monkeypatch.setenv("FODHASH_CACHE_DIR", str(tmp_path / "deep" / "cache"))
    with ResultCache() as default:
        default.put(entry("a"))
        assert default.info().location == tmp_path / "deep" / "cache"
    assert (tmp_path / "deep" / "cache" / "cache.db").is_file()


# --- storage ---------------------------------------------------------------------------------


def test_put_get_round_trip(store: ResultCache) -> None:
    item = entry("webui")
    assert store.get(item.key) is None
    store.put(item)
    assert store.get(item.key) == item
    newer = entry("webui", value="rebuilt", when=1_800_000_000.0)
    store.put(newer)
    assert store.get(item.key) == newer


def test_values_on_disk_are_json_not_pickles(store: ResultCache, tmp_path: Path) -> None:
    item = entry("webui")
    store.put(item)
    store.close()
    raw = diskcache.Cache(str(tmp_path / "store"))
    try:
        value = raw.get(item.key)
    finally:
        raw.close()
    assert isinstance(value, str)
    assert json.loads(value) == {"hash": item.hash.sri, "platform": LINUX,
                                 "name": "webui-deps", "nix_version": "2.18.1",
                                 "time": 1_700_000_000.5}


def test_unreadable_value_is_a_miss(store: ResultCache, tmp_path: Path) -> None:
    item = entry("webui")
    raw = diskcache.Cache(str(tmp_path / "store"))
    raw.set(item.key, '{"hash": "not a hash"}')
    raw.close()
    assert store.get(item.key) is None
    assert store.entries() == []


@pytest.mark.parametrize("bad", [
    Entry("short", sha256("x"), LINUX, "n", "2.18", 1.0),
    Entry("A" * 64, sha256("x"), LINUX, "n", "2.18", 1.0),
    Entry("a" * 64, Hash(Algo.SHA256, bytes(32)), LINUX, "n", "2.18", 1.0),
    Entry("a" * 64, sha256("x"), "", "n", "2.18", 1.0),
], ids=["short-key", "uppercase-key", "fake-hash", "no-platform"])
def test_put_refuses_what_import_would_refuse(store: ResultCache, bad: Entry) -> None:
    with pytest.raises(ValueError, match="cache entry"):
        store.put(bad)
    assert store.entries() == []


def test_entries_filter_by_platform(store: ResultCache) -> None:
    a, b, c = entry("a"), entry("b", DARWIN), entry("c")
    fill(store, c, b, a)
    assert store.entries() == [b, a, c]  # sorted by platform, then name
    assert store.entries(LINUX) == [a, c]
    assert store.entries(DARWIN) == [b]
    assert store.entries("riscv64-linux") == []


def test_clear_by_platform_keeps_other_platforms(store: ResultCache) -> None:
    a, b, c = entry("a"), entry("b", DARWIN), entry("c")
    fill(store, a, b, c)
    assert store.clear(LINUX) == 2
    assert store.entries() == [b]
    assert store.get(a.key) is None
    assert store.clear("riscv64-linux") == 0
    assert store.clear() == 1
    assert store.entries() == []


def test_info_counts_entries_per_platform(store: ResultCache, tmp_path: Path) -> None:
    empty = store.info()
    assert (empty.location, empty.platforms, empty.total) == (tmp_path / "store", {}, 0)
    fill(store, entry("a"), entry("b", DARWIN), entry("c"))
    info = store.info()
    assert info.platforms == {DARWIN: 1, LINUX: 2}
    assert info.total == 3
    assert info.size > 0


# --- key -------------------------------------------------------------------------------------


def show(out_hash: str, out_path: str, *, system: str = LINUX, src: str = "/nix/store/aa-src",
         lock: str = "v1") -> str:
    """The text of a .drv file, as Nix writes it (ATerm)."""
    env = {"lock": lock, "name": "webui-deps", "out": out_path, "outputHash": out_hash,
           "outputHashAlgo": "sha256", "outputHashMode": "recursive"}
    pairs = ",".join(f'("{k}","{v}")' for k, v in sorted(env.items()))
    return (f'Derive([("out","{out_path}","r:sha256","{out_hash}")],'
            f'[("{src}.drv",["out"])],["/nix/store/bb-builder.sh"],"{system}",'
            f'"/nix/store/cc-bash/bin/bash",["-e","/nix/store/bb-builder.sh"],[{pairs}])')


def key_of(text: str) -> str:
    return key_for(parse_drv("/nix/store/00-webui-deps.drv", text))


def test_key_ignores_the_output_hash_and_paths() -> None:
    sentinel = key_of(show("11" * 32, "/nix/store/11-webui-deps"))
    real = key_of(show("22" * 32, "/nix/store/22-webui-deps"))
    assert sentinel == real
    assert len(sentinel) == 64
    assert sentinel == parse_drv("/nix/store/00-webui-deps.drv",
                                 show("11" * 32, "/nix/store/x")).digest()


@pytest.mark.parametrize("change", [
    {"src": "/nix/store/dd-src"}, {"lock": "v2"}, {"system": "aarch64-darwin"},
], ids=["input-drv", "env", "system"])
def test_key_changes_with_any_input(change: dict[str, str]) -> None:
    base = key_of(show("11" * 32, "/nix/store/11-webui-deps"))
    assert key_of(show("11" * 32, "/nix/store/11-webui-deps", **change)) != base


# --- export and import -----------------------------------------------------------------------


def test_export_import_round_trip(store: ResultCache, tmp_path: Path) -> None:
    items = [entry("a"), entry("b", DARWIN), entry("c")]
    fill(store, *items)
    out = tmp_path / "artifact.json"
    assert store.export(out) == 3
    document = json.loads(out.read_text())
    assert (document["format"], document["version"]) == ("fodhash-cache", 1)
    assert document["checksum"] == checksum(document["entries"])
    assert document["entries"][0] == {"key": items[1].key, "hash": items[1].hash.sri,
                                      "platform": DARWIN, "name": "b-deps",
                                      "nix_version": "2.18.1", "time": 1_700_000_000.5}
    with ResultCache(tmp_path / "fresh") as fresh:
        assert fresh.import_files([out]) == 3
        assert fresh.entries() == store.entries()
        assert fresh.import_files([out]) == 0  # nothing new the second time


def test_export_one_platform(store: ResultCache, tmp_path: Path) -> None:
    fill(store, entry("a"), entry("b", DARWIN))
    out = tmp_path / "darwin.json"
    assert store.export(out, DARWIN) == 1
    with ResultCache(tmp_path / "fresh") as fresh:
        fresh.import_files([out])
        assert fresh.entries() == [entry("b", DARWIN)]


def test_export_replaces_the_file_atomically(store: ResultCache, tmp_path: Path) -> None:
    out_dir = tmp_path / "artifacts"
    out_dir.mkdir()
    out = out_dir / "cache.json"
    out.write_text("old contents")
    fill(store, entry("a"))
    assert store.export(out) == 1
    assert json.loads(out.read_text())["entries"][0]["name"] == "a-deps"
    assert sorted(p.name for p in out_dir.iterdir()) == ["cache.json"]  # no temp file left


def test_export_into_missing_folder_is_a_usage_error(store: ResultCache, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot write"):
        store.export(tmp_path / "missing" / "cache.json")


def test_import_merges_files_and_keeps_latest(store: ResultCache, tmp_path: Path) -> None:
    old, new = entry("a", when=100.0), entry("a", when=200.0)
    other = entry("b", DARWIN)
    one = write_doc(tmp_path / "one.json", [new.to_json(), other.to_json()])
    two = write_doc(tmp_path / "two.json", [old.to_json(), other.to_json()])
    assert store.import_files([one, two]) == 2
    assert store.entries() == [other, new]
    store.put(entry("b", DARWIN, value="local", when=2e9))  # newer than the file's
    assert store.import_files([one]) == 0
    assert store.get(other.key) == entry("b", DARWIN, value="local", when=2e9)


def _mutate(field: str, value: Any) -> Callable[[list[dict[str, Any]]], None]:
    def change(raws: list[dict[str, Any]]) -> None:
        raws[1][field] = value
    return change


def _drop(field: str) -> Callable[[list[dict[str, Any]]], None]:
    def change(raws: list[dict[str, Any]]) -> None:
        del raws[1][field]
    return change


def _duplicate(raws: list[dict[str, Any]]) -> None:
    raws.append({**raws[0], "hash": sha256("other").sri})


ENTRY_CASES = [
    pytest.param(_drop("name"), "entry 1 lacks the field 'name'", id="missing-field"),
    pytest.param(_mutate("time", "yesterday"), "entry 1 field 'time' is a string",
                 id="wrong-type"),
    pytest.param(_mutate("time", True), "entry 1 field 'time' is a boolean", id="bool-time"),
    pytest.param(_mutate("hash", "sha256-tooShort="), "entry 1 hash 'sha256-tooShort='",
                 id="bad-hash"),
    pytest.param(_mutate("hash", "sha256:" + nix32_encode(sha256("x").digest)),
                 "entry 1 hash .* is not in SRI form", id="not-sri"),
    pytest.param(_mutate("hash", Hash(Algo.SHA256, bytes(32)).sri), "entry 1 .*fake",
                 id="fake-hash"),
    pytest.param(_mutate("key", "abc"), "entry 1 key 'abc' is not 64", id="bad-key"),
    pytest.param(_mutate("extra", 1), "entry 1 has unknown field", id="unknown-field"),
    pytest.param(_duplicate, r"entry 3 conflicts with .*one\.json entry 0", id="conflict"),
]


@pytest.fixture
def seeded(store: ResultCache) -> ResultCache:
    """A target cache holding one entry that no refused import may change."""
    store.put(entry("local", when=5.0))
    return store


def _good_raws() -> list[dict[str, Any]]:
    return [entry(seed).to_json() for seed in ("a", "b", "c")]


@pytest.mark.parametrize(("change", "message"), ENTRY_CASES)
def test_import_refuses_bad_entries(seeded: ResultCache, tmp_path: Path,
                                    change: Callable[[list[dict[str, Any]]], None],
                                    message: str) -> None:
    before = seeded.entries()
    raws = _good_raws()
    change(raws)
    bad = write_doc(tmp_path / "one.json", raws)  # checksum fits: the entry check must fire
    with pytest.raises(UsageError, match=message) as refused:
        seeded.import_files([bad])
    assert str(bad) in str(refused.value)
    assert seeded.entries() == before


def _file_cases(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    good = write_doc(tmp_path / "good.json", _good_raws())
    text = good.read_text()
    tampered = json.loads(text)
    tampered["entries"][1]["hash"] = sha256("attacker").sri
    cases = {
        "malformed": ("{not json", "not valid JSON"),
        "truncated": (text[: len(text) // 2], "not valid JSON.*truncated"),
        "empty": ("", "not valid JSON"),
        "not-an-object": ("[]", "not a fodhash cache file"),
        "wrong-format": (text.replace(FORMAT, "other-cache"), "not a fodhash cache file"),
        "newer-version": (text.replace('"version": 1', '"version": 2'), "format version 2"),
        "string-version": (text.replace('"version": 1', '"version": "1"'),
                           "format version '1'"),
        "tampered": (json.dumps(tampered), "checksum mismatch"),
        "no-checksum": (json.dumps({k: v for k, v in tampered.items() if k != "checksum"}),
                        "checksum\" is missing"),
        "entries-not-list": (json.dumps({**tampered, "entries": {}}), "entries\" is missing"),
    }
    result = {}
    for name, (content, message) in cases.items():
        path = tmp_path / f"{name}.json"
        path.write_text(content)
        result[name] = (path, message)
    (tmp_path / "binary.json").write_bytes(b"\xff\xfe\x00garbage")
    result["binary"] = (tmp_path / "binary.json", "cannot read")
    result["missing"] = (tmp_path / "missing.json", "cannot read")
    return result


FILE_CASES = ["malformed", "truncated", "empty", "not-an-object", "wrong-format",
              "newer-version", "string-version", "tampered", "no-checksum",
              "entries-not-list", "binary", "missing"]


@pytest.mark.parametrize("case", FILE_CASES)
def test_import_refuses_bad_files(seeded: ResultCache, tmp_path: Path, case: str) -> None:
    before = seeded.entries()
    path, message = _file_cases(tmp_path)[case]
    with pytest.raises(UsageError, match=message) as refused:
        seeded.import_files([path])
    assert str(path) in str(refused.value)
    assert seeded.entries() == before


@pytest.mark.parametrize("case", ["truncated", "tampered"])
def test_import_is_all_or_nothing_across_files(seeded: ResultCache, tmp_path: Path,
                                               case: str) -> None:
    before = seeded.entries()
    good = write_doc(tmp_path / "first.json", [entry("x").to_json(), entry("y").to_json()])
    bad, _ = _file_cases(tmp_path)[case]
    with pytest.raises(UsageError, match=str(bad.name)):
        seeded.import_files([good, bad])
    assert seeded.entries() == before
    assert seeded.get(entry("x").key) is None


def test_import_refuses_conflicts_between_files(seeded: ResultCache, tmp_path: Path) -> None:
    before = seeded.entries()
    one = write_doc(tmp_path / "one.json", [entry("a").to_json()])
    two = write_doc(tmp_path / "two.json", [entry("b").to_json(),
                                            entry("a", value="different").to_json()])
    with pytest.raises(UsageError, match=r"two\.json: entry 1 conflicts with .*one\.json"):
        seeded.import_files([one, two])
    assert seeded.entries() == before


# --- concurrency -----------------------------------------------------------------------------

WRITER = textwrap.dedent("""
    import hashlib, sys, time
    from pathlib import Path
    from fodhash.cache.export import Entry
    from fodhash.cache.store import ResultCache
    from fodhash.hashes.encoding import Algo, Hash

    directory, worker, count, go = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
    while not Path(go).exists():  # start together, to collide
        time.sleep(0.005)
    with ResultCache(directory) as cache:
        for i in range(count):
            seed = f"{worker}-{i}"
            key = hashlib.sha256(seed.encode()).hexdigest()
            value = Hash(Algo.SHA256, hashlib.sha256(b"hash-" + seed.encode()).digest())
            cache.put(Entry(key, value, "x86_64-linux", seed, "2.18.1", time.time()))
            shared = hashlib.sha256(b"shared").hexdigest()
            cache.put(Entry(shared, value, "x86_64-linux", seed, "2.18.1", time.time()))
""")


def test_concurrent_processes_lose_no_entry(tmp_path: Path) -> None:
    directory, go = tmp_path / "shared", tmp_path / "go"
    workers, count = 4, 150
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(directory), f"w{n}",
                               str(count), str(go)], cwd=ROOT)
             for n in range(workers)]
    time.sleep(0.5)  # let every interpreter start before the gun
    go.touch()
    assert [proc.wait(timeout=300) for proc in procs] == [0] * workers
    with ResultCache(directory) as merged:
        found = {e.key: e for e in merged.entries()}
    assert len(found) == workers * count + 1
    for n in range(workers):
        for i in range(count):
            seed = f"w{n}-{i}"
            got = found[hashlib.sha256(seed.encode()).hexdigest()]
            assert got.name == seed
            assert got.hash == Hash(Algo.SHA256, hashlib.sha256(f"hash-{seed}".encode()).digest())
    shared = found[hashlib.sha256(b"shared").hexdigest()]
    assert shared.hash == Hash(Algo.SHA256, hashlib.sha256(f"hash-{shared.name}".encode())
                               .digest())  # one writer's whole entry, never a mix


# --- command line ----------------------------------------------------------------------------


@pytest.fixture
def cli() -> Callable[..., Any]:
    root = typer.Typer()
    root.add_typer(cache_app, name="cache")

    @root.callback()
    def _root() -> None:
        pass

    runner = CliRunner()
    return lambda *args: runner.invoke(root, ["cache", *args])


def test_cli_info_export_clear_import(cli: Callable[..., Any], tmp_path: Path) -> None:
    with ResultCache() as default:
        fill(default, entry("a"), entry("b", DARWIN), entry("c"))
    info = cli("info")
    assert info.exit_code == 0, info.output
    assert str(cache_dir()) in info.output
    assert "entries:  3" in info.output
    assert any(line.split() == [LINUX, "2"] for line in info.output.splitlines())
    assert any(line.split() == [DARWIN, "1"] for line in info.output.splitlines())

    out = tmp_path / "linux.json"
    exported = cli("export", str(out), "--platform", LINUX)
    assert exported.exit_code == 0, exported.output
    assert "exported 2 entries of platform x86_64-linux" in exported.output

    cleared = cli("clear", "--platform", LINUX)
    assert "removed 2 entries" in cleared.output
    with ResultCache() as default:
        assert default.entries() == [entry("b", DARWIN)]

    imported = cli("import", str(out))
    assert imported.exit_code == 0, imported.output
    assert "imported 2 new or updated entries from 1 file(s)" in imported.output
    assert "removed 3 entries" in cli("clear").output


def test_cli_import_of_a_bad_file_raises_usage_error(cli: Callable[..., Any],
                                                     tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "fodhash-cache", "version": 1, "entries": [')
    result = cli("import", str(bad))
    assert result.exit_code == 2  # the error boundary: a message, exit 2, no traceback
    assert "bad.json" in result.output
    assert "Traceback" not in result.output
    with ResultCache() as default:
        assert default.entries() == []
