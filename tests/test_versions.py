"""Versions of a session, through :class:`Sessions`, on every store.

Each test runs against the filesystem store, a real redis-server and a real
three-master Redis Cluster (started by the fixtures on loopback). States are built
directly: no browser here.
"""

from __future__ import annotations

import base64
import os
import secrets
import threading
import time

import pytest
import trio

from psp_cdp.errors import CorruptSnapshotError, StoreError, UsageError, VersionNotFoundError
from psp_cdp.snapshot import codec, diff, model
from psp_cdp.store import Sessions, open_store
from psp_cdp.store.keys import Keyring

BACKENDS = ["filesystem", "redis", "cluster"]


@pytest.fixture(params=BACKENDS)
def store_spec(request: pytest.FixtureRequest, tmp_path) -> str:
    """A fresh store of each kind: a directory, or a Redis URL with a key prefix of its own."""
    if request.param == "filesystem":
        return str(tmp_path / "store")
    url = request.getfixturevalue("redis_url" if request.param == "redis" else "redis_cluster_url")
    return f"{url}{'&' if '?' in url else '?'}prefix=t{secrets.token_hex(4)}"


@pytest.fixture
def sessions(store_spec: str):  # type: ignore[no-untyped-def]
    store = open_store(store_spec)
    yield Sessions(store)
    store.close()


def heavy(secret: str = "s3cret", *, n: int = 2000, changing: str = "one") -> model.BrowserSessionState:
    state = model.BrowserSessionState(version=model.PROTOCOL_VERSION, timestamp=1_700_000_000_000)
    state.storage.cookies.add(name="sid", value=secret, domain="example.com", path="/", http_only=True)
    items = {f"key-{i}": f"value-{i}-" + secrets.token_hex(100) for i in range(n)}
    items["changing"] = changing
    model.storage_items(state.storage.local_storage.add(origin="https://example.com"), items)
    database = state.storage.indexed_db.add(origin="https://example.com", version=1)
    database.name.text = "app"
    store = database.stores.add(id=1)
    store.name.text = "records"
    for i in range(200):
        state.storage.indexed_db_records.add(
            store=1,
            key=model.SerializedValue(encoding="structured-clone-v1", data=str(i).encode()),
            value=model.SerializedValue(encoding="structured-clone-v1", data=os.urandom(64)),
        )
    return state


def changed(state: model.BrowserSessionState, value: str) -> model.BrowserSessionState:
    child = model.BrowserSessionState()
    child.CopyFrom(state)
    for item in child.storage.local_storage[0].items:
        if model.text(item.key) == "changing":
            item.value.text = value
    return child


async def test_a_second_version_stores_only_the_change(sessions: Sessions) -> None:
    first = heavy()
    second = changed(first, "two")
    _, v1 = await sessions.save("s", first)
    info, v2 = await sessions.save("s", second)
    assert (v1.kind, v2.kind) == ("full", "delta") and (v2.parent, v2.base) == (1, 1)
    assert v2.stored_bytes < v1.stored_bytes / 100
    assert v2.changes == {"local_storage": {"added": 0, "changed": 1, "removed": 0}}
    assert info.head == 2
    assert (await sessions.load("s@1"))[1] == first
    assert (await sessions.load("s@2"))[1] == second
    assert (await sessions.load("s"))[1] == second
    listed = (await sessions.versions("s"))[1]
    assert [v.version for v in listed] == [1, 2] and all(v.stored_bytes > v.blob_bytes for v in listed)


async def test_full_snapshots_every_n_and_when_the_chain_outgrows_the_full_one(sessions: Sessions) -> None:
    state = heavy(n=300)
    kinds = []
    for i in range(7):
        state = changed(state, f"v{i}")
        kinds.append((await sessions.save("s", state, full_every=3))[1].kind)
    assert kinds == ["full", "delta", "delta", "full", "delta", "delta", "full"]
    # A change as large as the state itself does not make a delta.
    big = heavy(n=300)
    for item in big.storage.local_storage[0].items:
        item.value.text = secrets.token_hex(120)
    assert (await sessions.save("s", big, full_every=100))[1].kind == "full"
    for number in range(1, 9):
        assert (await sessions.load(f"s@{number}"))[1].storage.local_storage


async def test_retention_keeps_the_last_n_and_what_they_need(sessions: Sessions) -> None:
    states = []
    state = heavy(n=50)
    for i in range(9):
        state = changed(state, f"v{i}")
        states.append(state)
        await sessions.save("s", state, keep=3, full_every=4)
    numbers = [v.version for v in (await sessions.versions("s"))[1]]
    # Versions 7..9 are kept; 9 is full (every 4: 1, 5, 9), 7 and 8 need 5.
    assert numbers == [5, 6, 7, 8, 9]
    for number in numbers:
        assert (await sessions.load(f"s@{number}"))[1] == states[number - 1]
    with pytest.raises(VersionNotFoundError, match="no version 2"):
        await sessions.load("s@2")


async def test_damaged_or_swapped_blobs_name_session_and_version_and_spare_the_others(sessions: Sessions) -> None:
    state = heavy(n=100)
    for i in range(4):
        state = changed(state, f"v{i}")
        await sessions.save("s", state)
    store = sessions.store
    info = store.get("s")
    versions = {v.version: v for v in store.versions(info)}
    blob = bytearray(store.read_version(info, 3))
    blob[len(blob) // 2] ^= 0x10
    store.replace_version(info, versions[3], bytes(blob))
    with pytest.raises(CorruptSnapshotError, match=r"session 's' version 3"):
        await sessions.load("s@3")
    with pytest.raises(CorruptSnapshotError, match=r"version 3"):
        await sessions.load("s@4")  # needs 3
    assert (await sessions.load("s@2"))[1].storage.local_storage
    # Version 2's blob in version 1's place: bound to another version, so refused.
    store.replace_version(info, versions[1], store.read_version(info, 2))
    with pytest.raises(CorruptSnapshotError, match=r"version 1"):
        await sessions.load("s@1")


async def test_a_missing_parent_is_named(sessions: Sessions) -> None:
    state = heavy(n=50)
    for i in range(3):
        state = changed(state, f"v{i}")
        await sessions.save("s", state)
    info = sessions.store.get("s")
    sessions.store.delete_versions(info, [2])
    with pytest.raises(VersionNotFoundError, match="delta of version 2, which is missing"):
        await sessions.load("s@3")
    assert (await sessions.load("s@1"))[1].storage.local_storage


async def test_values_never_appear_in_clear_in_the_store(sessions: Sessions, store_spec: str, tmp_path) -> None:
    secret = "cookie-" + secrets.token_hex(16)
    state = heavy(secret)
    model.storage_items(state.storage.local_storage.add(origin="https://b.example"), {"token": "ls-" + secret})
    token = state.auth.tokens.add(type="bearer", domain="example.com", source="localStorage")
    token.value = "tok-" + secret
    await sessions.save("s", state)
    await sessions.save("s", changed(state, "plain"))
    needle = secret.encode()
    for raw in _everything_stored(sessions, store_spec):
        assert needle not in raw
    info = sessions.store.get("s")
    assert info.name == "s" and info.origins and info.components["cookies"] == 1  # listing needs no key


def _everything_stored(sessions: Sessions, spec: str) -> list[bytes]:
    if "://" not in spec:
        return [p.read_bytes() for p in __import__("pathlib").Path(spec).rglob("*") if p.is_file()]
    client = sessions.store.client  # type: ignore[attr-defined]
    values = []
    for key in client.scan_iter(match="*", count=1000):
        kind = client.type(key)
        kind = kind.decode() if isinstance(kind, bytes) else kind
        if kind == "string":
            values.append(client.get(key))
        elif kind == "hash":
            values.extend(b"".join(_b(x) for x in pair) for pair in client.hgetall(key).items())
        elif kind == "stream":
            values.extend(repr(entry).encode() for entry in client.xrange(key))
    return values


def _b(value) -> bytes:  # type: ignore[no-untyped-def]
    return value if isinstance(value, bytes) else str(value).encode()


async def test_concurrent_writers_rebase_and_lose_nothing(store_spec: str) -> None:
    """Four writers, each with its own Sessions (own caches), write one session at once."""
    errors: list[BaseException] = []

    def writer(tag: str) -> None:
        store = open_store(store_spec)
        try:
            sessions = Sessions(store)
            for i in range(4):
                trio.run(sessions.save, "shared", changed(heavy(n=50), f"{tag}-{i}"))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=writer, args=(f"w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    store = open_store(store_spec)
    sessions = Sessions(store)
    versions = (await sessions.versions("shared"))[1]
    assert [v.version for v in versions] == list(range(1, 17))
    seen = set()
    for version in versions:
        state = (await sessions.load(f"shared@{version.version}"))[1]
        seen.add(next(model.text(i.value) for i in state.storage.local_storage[0].items if model.text(i.key) == "changing"))
    assert seen == {f"w{n}-{i}" for n in range(4) for i in range(4)}
    store.close()


async def test_rotate_then_rewrap(sessions: Sessions, tmp_path) -> None:
    keyring = Keyring(str(tmp_path / "keys"))
    sessions.keyring = keyring
    first = heavy(n=50)
    await sessions.save("s", first)
    old_id = keyring.current_id()
    keyring.create()  # rotate
    await sessions.save("s", changed(first, "after rotation"))
    versions = (await sessions.versions("s"))[1]
    assert [v.key_id for v in versions] == [old_id, keyring.current_id()]
    assert (await sessions.load("s@1"))[1] == first  # the old key still opens the old version
    done = await sessions.rewrap()
    assert [n for _, n in done] == [1]
    assert {v.key_id for v in (await sessions.versions("s"))[1]} == {keyring.current_id()}
    os.unlink(os.path.join(keyring.directory, old_id))
    assert (await sessions.load("s@1"))[1] == first
    assert (await sessions.load("s@2"))[1] == changed(first, "after rotation")


async def test_wrong_or_missing_key_is_a_clear_error(sessions: Sessions, tmp_path) -> None:
    await sessions.save("s", heavy(n=10))
    other = Sessions(sessions.store, keyring=Keyring(str(tmp_path / "other"), environ={}))
    with pytest.raises(StoreError, match=r"session 's' version 1.*no key"):
        await other.load("s")
    forged = Keyring(str(tmp_path / "other"), environ={"PSP_KEY": base64.b64encode(os.urandom(32)).decode()})
    with pytest.raises(StoreError, match="no key"):
        await Sessions(sessions.store, keyring=forged).load("s")


async def test_chacha20_and_unsealed_versions(sessions: Sessions) -> None:
    state = heavy(n=20)
    sessions.cipher = "chacha20-poly1305"
    await sessions.save("s", state)
    sessions.cipher = "none"
    await sessions.save("s", changed(state, "clear"))
    versions = (await sessions.versions("s"))[1]
    assert [(v.cipher, bool(v.key_id)) for v in versions] == [("chacha20-poly1305", True), ("none", False)]
    assert (await sessions.load("s@1"))[1] == state
    header = codec.read_header(sessions.store.read_version(sessions.store.get("s"), 1))
    assert header.cipher == "chacha20-poly1305" and header.kind == "full"
    with pytest.raises(UsageError):
        Sessions(sessions.store, cipher="rot13")


async def test_ttl_forgets_an_idle_session(sessions: Sessions) -> None:
    await sessions.save("brief", heavy(n=5), ttl=1)
    await sessions.save("lasting", heavy(n=5))
    assert sessions.store.find("brief") is not None
    await trio.sleep(2.2)
    assert sessions.store.find("brief") is None
    assert [s.name for s in sessions.store.list()] == ["lasting"]


async def test_diff_between_versions_names_items(sessions: Sessions) -> None:
    first = heavy(n=30)
    second = changed(first, "two")
    second.storage.cookies.add(name="new", value="v", domain="example.com", path="/")
    del second.storage.indexed_db_records[5]
    await sessions.save("s", first)
    await sessions.save("s", second)
    _, _, before = await sessions.items("s@1")
    _, _, after = await sessions.items("s@2")
    changes = diff.compare(before, after)
    assert {(c.component, c.op) for c in changes} == {
        ("local_storage", "changed"),
        ("cookies", "added"),
        ("indexed_db", "removed"),
    }
    assert any("cookie new" in c.what for c in changes)
    assert all("value" not in c.what or "changing" in c.what for c in changes)


async def test_stored_timing_is_recorded(sessions: Sessions) -> None:
    before = time.time()
    _, version = await sessions.save("s", heavy(n=5))
    assert before <= version.created_at <= time.time()
