"""The filesystem store: atomic, inspectable, safe for concurrent writers of different sessions.

No browser here: states are built directly. Every test uses its own temporary store.
"""

from __future__ import annotations

import multiprocessing
import os
import stat

import pytest
import trio

from psp_cdp.errors import CorruptSnapshotError, SessionExistsError, SessionNotFoundError, StoreError, UsageError
from psp_cdp.snapshot import codec, model
from psp_cdp.state import registry
from psp_cdp.store import FilesystemStore, Sessions, VersionInfo, open_store, parse_tags


def _state(value: str = "v") -> model.BrowserSessionState:
    state = model.BrowserSessionState(version=model.PROTOCOL_VERSION, timestamp=1_700_000_000_000)
    state.storage.cookies.add(name="sid", value=value, domain="example.com", path="/")
    model.storage_items(state.storage.local_storage.add(origin="https://example.com"), {"k": value})
    return state


def test_create_find_list_delete(tmp_path) -> None:
    store = FilesystemStore(str(tmp_path))
    info = store.create("login", description="d", tags={"team": "qa"})
    assert len(info.id) == 32 and int(info.id, 16) >= 0
    assert store.get("login").id == info.id
    assert store.get(info.id).name == "login"
    assert [s.name for s in store.list({"team": "qa"})] == ["login"]
    assert store.list({"team": "dev"}) == []
    with pytest.raises(SessionExistsError):
        store.create("login")
    store.delete(info)
    assert store.find("login") is None
    assert not os.path.exists(tmp_path / "sessions" / info.id)


def test_unknown_name_lists_similar_ones(tmp_path) -> None:
    store = FilesystemStore(str(tmp_path))
    store.create("login-prod")
    store.create("login-staging")
    store.create("other")
    with pytest.raises(SessionNotFoundError) as caught:
        store.get("login-prd")
    assert "login-prd" in str(caught.value)
    assert "login-prod" in caught.value.similar


def test_files_are_private_and_layout_is_inspectable(tmp_path) -> None:
    store = FilesystemStore(str(tmp_path / "s"))
    info = store.create("x")
    store.write_version(info, VersionInfo(1), codec.encode(_state()))
    session_dir = tmp_path / "s" / "sessions" / info.id
    assert (tmp_path / "s" / "names" / "x").read_text().strip() == info.id
    for path in (session_dir / "versions" / "1", session_dir / "session.json"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "s").stat().st_mode) == 0o700
    assert not [p for p in session_dir.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("name", ["", "has space", "../x", ".hidden", "a/b", "x" * 129])
def test_invalid_names_are_refused(tmp_path, name: str) -> None:
    with pytest.raises(UsageError):
        FilesystemStore(str(tmp_path)).create(name)


def test_tags_parse() -> None:
    assert parse_tags(["a=1", "b=x=y"]) == {"a": "1", "b": "x=y"}
    with pytest.raises(UsageError):
        parse_tags(["novalue"])


def test_unknown_store_schemes_are_refused() -> None:
    with pytest.raises(UsageError, match="unknown store"):
        open_store("s3://bucket/x")


async def test_save_makes_a_new_version_and_keeps_identity(tmp_path) -> None:
    sessions = Sessions(FilesystemStore(str(tmp_path)))
    first, _ = await sessions.save("s", _state("one"), tags={"a": "1"})
    second, version = await sessions.save("s", _state("two"))
    assert first.id == second.id and second.tags == {"a": "1"}
    assert version.version == 2 and second.head == 2
    _, state = await sessions.load("s")
    assert state.storage.cookies[0].value == "two"
    assert second.components["cookies"] == 1 and second.components["local_storage"] == 1
    assert "https://example.com" in second.origins


async def test_corrupted_state_names_its_file_and_spares_the_others(tmp_path) -> None:
    sessions = Sessions(FilesystemStore(str(tmp_path)))
    bad, _ = await sessions.save("bad", _state())
    await sessions.save("good", _state("fine"))
    path = tmp_path / "sessions" / bad.id / "versions" / "1"
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(CorruptSnapshotError) as caught:
        await sessions.load("bad")
    assert str(path) in str(caught.value) and "version 1" in str(caught.value)
    _, good = await sessions.load("good")
    assert good.storage.cookies[0].value == "fine"


async def test_damaged_metadata_names_its_file_and_listing_goes_on(tmp_path) -> None:
    store = FilesystemStore(str(tmp_path))
    sessions = Sessions(store)
    bad, _ = await sessions.save("bad", _state())
    await sessions.save("good", _state())
    (tmp_path / "sessions" / bad.id / "session.json").write_text("{not json")
    assert [s.name for s in store.list()] == ["good"]
    with pytest.raises(StoreError, match="session.json"):
        store.get("bad")


async def test_hooks_run_before_store_and_after_load(tmp_path) -> None:
    def redact(stage: str, state: model.BrowserSessionState) -> None:
        if stage == "before_store":
            for cookie in state.storage.cookies:
                cookie.value = "REDACTED"
        else:
            state.origin = "loaded"

    registry.add_hook(redact)
    try:
        sessions = Sessions(FilesystemStore(str(tmp_path)))
        await sessions.save("s", _state("secret"))
        _, state = await sessions.load("s")
    finally:
        registry._hooks.remove(redact)
    assert state.storage.cookies[0].value == "REDACTED"
    assert state.origin == "loaded"


def _writer(root: str, name: str, rounds: int) -> None:
    async def run() -> None:
        sessions = Sessions(FilesystemStore(root))
        for i in range(rounds):
            await sessions.save(name, _state(f"{name}-{i}"))

    trio.run(run)


def test_two_processes_write_different_sessions(tmp_path) -> None:
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_writer, args=(str(tmp_path), f"w{i}", 20)) for i in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0

    async def check() -> None:
        sessions = Sessions(FilesystemStore(str(tmp_path)))
        for i in range(2):
            _, state = await sessions.load(f"w{i}")
            assert state.storage.cookies[0].value == f"w{i}-19"

    trio.run(check)


def test_two_processes_racing_for_one_name_make_one_session(tmp_path) -> None:
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_writer, args=(str(tmp_path), "same", 5)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    store = FilesystemStore(str(tmp_path))
    assert [s.name for s in store.list()] == ["same"]
    assert len(os.listdir(tmp_path / "sessions")) == 1


async def test_a_session_of_the_unversioned_layout_becomes_version_1(tmp_path) -> None:
    import json as json_module

    import lz4.frame

    state = _state("legacy")
    fragment = state.SerializeToString()
    chunk = lz4.frame.compress(fragment, content_checksum=True, store_size=True)
    format_2 = b"PSPS\x02\x01\x00\x00" + len(chunk).to_bytes(4, "big") + b"\x01" + chunk
    session_dir = tmp_path / "sessions" / ("a" * 32)
    session_dir.mkdir(parents=True)
    (session_dir / "state.psp").write_bytes(format_2)
    record = {"id": "a" * 32, "name": "old", "created_at": 1.0, "updated_at": 2.0, "size": len(format_2),
              "components": {"cookies": 1}, "origins": ["example.com"], "captured_at": 1700000000.0}
    (session_dir / "session.json").write_text(json_module.dumps(record))
    (tmp_path / "names").mkdir()
    (tmp_path / "names" / "old").write_text("a" * 32 + "\n")
    sessions = Sessions(FilesystemStore(str(tmp_path)))
    info, loaded = await sessions.load("old")
    assert loaded == state and info.head == 1 and info.components == {"cookies": 1}
    assert not (session_dir / "state.psp").exists()
    await sessions.rewrap("old")
    assert [v.cipher for v in (await sessions.versions("old"))[1]] == ["aes-256-gcm"]
    assert (await sessions.load("old@1"))[1] == state


def _age(root: str, seconds: float = 30.0) -> None:
    """Set every file and directory of the store ``seconds`` into the past (as if written long ago)."""
    when = os.stat(root).st_mtime - seconds
    for directory, names, files in os.walk(root):
        for name in names + files:
            os.utime(os.path.join(directory, name), (when, when))
        os.utime(directory, (when, when))


@pytest.mark.parametrize("aged", [False, True], ids=["just written", "written long ago"])
def test_a_long_lived_store_lists_what_other_writers_changed(tmp_path, aged: bool) -> None:
    """The daemon's store keeps session descriptions between listings; another process's writes show at once."""
    root = str(tmp_path / "store")
    daemon_side, other = FilesystemStore(root), FilesystemStore(root)
    first = other.create("first", tags={"team": "a"})
    other.create("second")
    if aged:
        _age(root)
    assert [s.name for s in daemon_side.list()] == ["first", "second"]  # now kept
    assert daemon_side.list()[0].head == 0

    other.write_version(first, VersionInfo(1, created_at=1.0, components={"cookies": 3}), b"blob")
    listed = {s.name: s for s in daemon_side.list()}
    assert listed["first"].head == 1 and listed["first"].components == {"cookies": 3}

    first = other.get("first")
    first.description, first.tags = "changed", {"team": "b"}
    other.update(first)
    assert daemon_side.get("first").description == "changed"
    assert [s.name for s in daemon_side.list({"team": "b"})] == ["first"]

    other.delete(other.get("second"))
    other.create("third")
    names = [s.name for s in daemon_side.list()]
    assert "second" not in names and "third" in names

    mine = daemon_side.list()[0]
    mine.tags["mutated"] = "by a caller"
    mine.components["x"] = 1
    assert "mutated" not in daemon_side.list()[0].tags  # what a caller does to its copy stays with it
