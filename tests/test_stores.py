"""Store conformance: every store keeps the same promises, checked on real backends.

One suite, parametrized over the filesystem store, a standalone Redis and a Redis
Cluster (real ``redis-server`` processes from :mod:`tests.redis_servers`; no mocks).
Each test gets a fresh store: its own directory, or its own key prefix on the shared
servers, so tests never see each other's sessions. Blobs are small byte strings:
stores never decode them.

The tests after the suite are about Redis alone: one cluster slot per session,
pub/sub notices, the events stream, TTL on keys, TLS, URLs and messages without
passwords, and a server that stops and comes back.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from redis.crc import key_slot

from psp_cdp.errors import (
    ConflictError,
    SessionExistsError,
    SessionNotFoundError,
    StoreError,
    StoreUnavailableError,
    UsageError,
    VersionNotFoundError,
)
from psp_cdp.store import FilesystemStore, RedisStore, SessionInfo, Store, open_store
from psp_cdp.store.base import VersionInfo, prunable

from .redis_servers import RedisClusterServers, RedisServer, free_port, make_tls_files

BACKENDS = ["filesystem", "redis", "cluster"]
REDIS_BACKENDS = ["redis", "cluster"]


@dataclass
class Backend:
    """Where a test's stores live; :meth:`open` makes another client of the same store."""

    kind: str
    spec: str

    def open(self) -> Store:
        return FilesystemStore(self.spec) if self.kind == "filesystem" else open_store(self.spec)


def _with_options(url: str, **options: object) -> str:
    query = "&".join(f"{k}={v}" for k, v in options.items())
    return f"{url}{'&' if '?' in url else '?'}{query}"


def _backend(request: pytest.FixtureRequest, kind: str, tmp_path: Path) -> Backend:
    if kind == "filesystem":
        return Backend(kind, str(tmp_path / "store"))
    url = request.getfixturevalue("redis_url" if kind == "redis" else "redis_cluster_url")
    return Backend(kind, _with_options(url, prefix=f"t{secrets.token_hex(4)}"))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return _backend(request, request.param, tmp_path)


@pytest.fixture(params=REDIS_BACKENDS)
def redis_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return _backend(request, request.param, tmp_path)


@pytest.fixture
def opened() -> Iterator[Callable[[Backend], Store]]:
    """Opens stores of a backend and closes them after the test."""
    stores: list[Store] = []

    def open_(backend: Backend) -> Store:
        stores.append(backend.open())
        return stores[-1]

    yield open_
    for store in stores:
        store.close()


@pytest.fixture
def store(backend: Backend, opened: Callable[[Backend], Store]) -> Store:
    return opened(backend)


@pytest.fixture
def redis_store(redis_backend: Backend, opened: Callable[[Backend], Store]) -> RedisStore:
    store = opened(redis_backend)
    assert isinstance(store, RedisStore)
    return store


def _version(n: int, **fields: Any) -> VersionInfo:
    """Version ``n`` with every metadata field set, so a round trip shows each one."""
    defaults: dict[str, Any] = {
        "kind": "full",
        "parent": None,
        "base": 0,
        "created_at": time.time(),
        "raw_bytes": 1000 + n,
        "cipher": "aes-256-gcm",
        "key_id": "k1",
        "components": {"cookies": n, "local_storage": 2},
        "origins": ["https://example.com", f"https://{n}.example.org"],
        "captured_at": 1_700_000_000.5 + n,
        "changes": {},
    }
    defaults.update(fields)
    return VersionInfo(n, **defaults)


def _blob(n: int, tag: str = "") -> bytes:
    return f"blob {n}{tag} ".encode() + bytes(range(256))[: 16 + n] + b"\x00\xff"


def _write(store: Store, info: SessionInfo, n: int, **fields: Any) -> VersionInfo:
    blob = _blob(n)
    return store.write_version(info, _version(n, blob_bytes=len(blob), **fields), blob)


# -- the conformance suite: every backend --------------------------------------------------


def test_create_find_list_update_delete(store: Store) -> None:
    info = store.create("login", description="first", tags={"team": "qa", "env": "ci"})
    store.create("alpha", tags={"team": "dev"})
    assert len(info.id) == 32 and int(info.id, 16) >= 0
    assert info.head == 0

    for ref in ("login", info.id):
        found = store.find(ref)
        assert found is not None and (found.id, found.name, found.description) == (info.id, "login", "first")
        assert found.tags == {"team": "qa", "env": "ci"} and found.head == 0
    assert store.get("login").id == info.id
    assert store.find("nobody") is None
    with pytest.raises(SessionNotFoundError):
        store.get("logn")

    assert [s.name for s in store.list()] == ["alpha", "login"]
    assert [s.name for s in store.list({"team": "qa"})] == ["login"]
    assert [s.name for s in store.list({"team": "qa", "env": "prod"})] == []

    info.description = "second"
    info.tags = {"team": "ops"}
    info.keep = 3
    store.update(info)
    again = store.get(info.id)
    assert (again.description, again.tags, again.keep) == ("second", {"team": "ops"}, 3)
    assert [s.name for s in store.list({"team": "ops"})] == ["login"]

    with pytest.raises(SessionExistsError):
        store.create("login")
    assert store.get("login").id == info.id  # the failed create took nothing over

    store.delete(info)
    assert store.find("login") is None and store.find(info.id) is None
    assert [s.name for s in store.list()] == ["alpha"]
    assert store.create("login").id != info.id  # the name is free again


def test_versions_round_trip(store: Store) -> None:
    info = store.create("versions")
    written = [
        _write(store, info, 1),
        _write(store, info, 2, kind="delta", parent=1, base=1, changes={"cookies": {"added": 1, "changed": 0, "removed": 2}}),
        _write(store, info, 3, kind="delta", parent=2, base=1),
        _write(store, info, 4, cipher="none", key_id=None),
    ]
    for n, version in enumerate(written, start=1):
        assert store.read_version(info, n) == _blob(n)
        assert version.blob_bytes == len(_blob(n))
        assert version.stored_bytes > version.blob_bytes

    listed = store.versions(info)
    assert [v.version for v in listed] == [1, 2, 3, 4]
    assert [v.as_dict() for v in listed] == [v.as_dict() for v in written]

    for found in (store.get("versions"), store.list()[0]):
        assert found.head == 4
        assert found.size == written[-1].stored_bytes
        assert found.components == written[-1].components and found.origins == written[-1].origins
        assert found.captured_at == written[-1].captured_at


def test_writing_an_existing_version_conflicts(store: Store) -> None:
    info = store.create("conflict")
    _write(store, info, 1)
    loser = _version(1, blob_bytes=5)
    with pytest.raises(ConflictError) as caught:
        store.write_version(info, loser, b"loser")
    assert (caught.value.name, caught.value.version) == ("conflict", 1)
    assert store.read_version(info, 1) == _blob(1)  # the winner's blob is intact
    assert [v.version for v in store.versions(info)] == [1]
    with pytest.raises(ConflictError):  # a version must follow the latest one
        _write(store, info, 3)
    assert store.get("conflict").head == 1
    _write(store, info, 2)
    assert store.get("conflict").head == 2


def test_racing_writers_one_wins(backend: Backend, opened: Callable[[Backend], Store]) -> None:
    """Two clients in two threads write the same version at once: one wins, the other conflicts."""
    stores = [opened(backend), opened(backend)]
    info = stores[0].create("race")
    for n in range(1, 11):
        barrier = threading.Barrier(2)
        outcomes: list[object] = [None, None]

        def write(i: int) -> None:
            blob = _blob(n, tag=f"-writer{i}")
            barrier.wait()
            try:
                stores[i].write_version(info, _version(n, blob_bytes=len(blob)), blob)
                outcomes[i] = blob
            except ConflictError as exc:
                outcomes[i] = exc

        threads = [threading.Thread(target=write, args=(i,)) for i in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        winners = [o for o in outcomes if isinstance(o, bytes)]
        assert len(winners) == 1, outcomes
        assert sum(isinstance(o, ConflictError) for o in outcomes) == 1, outcomes
        assert stores[1].read_version(info, n) == winners[0]
    assert [v.version for v in stores[1].versions(info)] == list(range(1, 11))


def test_replace_version(store: Store) -> None:
    info = store.create("replace")
    _write(store, info, 1)
    _write(store, info, 2)
    blob = b"resealed " + bytes(100)
    replaced = store.replace_version(info, _version(1, key_id="k2", blob_bytes=len(blob)), blob)
    assert store.read_version(info, 1) == blob
    assert store.read_version(info, 2) == _blob(2)
    first = store.versions(info)[0]
    assert first.key_id == "k2" and first.blob_bytes == len(blob)
    assert first.stored_bytes == replaced.stored_bytes > len(blob)
    with pytest.raises(VersionNotFoundError):
        store.replace_version(info, _version(5), b"nothing to replace")
    assert [v.version for v in store.versions(info)] == [1, 2]
    assert store.get("replace").head == 2


def test_retention_removes_what_prunable_names(store: Store) -> None:
    info = store.create("retention")
    _write(store, info, 1)
    _write(store, info, 2, kind="delta", parent=1, base=1)
    _write(store, info, 3, kind="delta", parent=2, base=1)
    _write(store, info, 4)
    _write(store, info, 5, kind="delta", parent=4, base=4)
    _write(store, info, 6, kind="delta", parent=5, base=4)

    # keep 2: versions 5 and 6 are kept, and the full version 4 they start from
    doomed = prunable(store.versions(info), keep=2)
    assert doomed == [1, 2, 3]
    store.delete_versions(info, doomed + [99])  # a missing version is skipped
    assert [v.version for v in store.versions(info)] == [4, 5, 6]
    for n in doomed:
        with pytest.raises(VersionNotFoundError):
            store.read_version(info, n)
    assert store.read_version(info, 4) == _blob(4)
    assert store.get("retention").head == 6
    _write(store, info, 7)
    assert [v.version for v in store.versions(info)] == [4, 5, 6, 7]


def test_missing_version_is_named(store: Store) -> None:
    info = store.create("empty")
    with pytest.raises(VersionNotFoundError) as caught:
        store.read_version(info, 3)
    assert "'empty'" in str(caught.value) and "3" in str(caught.value)
    assert store.versions(info) == []
    _write(store, info, 1)
    with pytest.raises(VersionNotFoundError):
        store.read_version(info, 2)
    assert "3" in store.version_location(info, 3)


def test_ttl_forgets_a_session(store: Store) -> None:
    info = store.create("short-lived")
    keeper = store.create("keeper")
    info.ttl = 1
    store.update(info)
    _write(store, info, 1)
    _write(store, keeper, 1)
    if isinstance(store, RedisStore):
        keys = store.session_keys(info)
        assert len(keys) == 5  # record, head, meta, events, v:1
        assert all(0 < store.client.pttl(key) <= 1000 for key in keys)
        assert all(store.client.ttl(key) == -1 for key in store.session_keys(keeper))
    assert store.get("short-lived").head == 1

    time.sleep(1.5)
    assert store.find("short-lived") is None
    assert store.find(info.id) is None
    assert [s.name for s in store.list()] == ["keeper"]
    if isinstance(store, RedisStore):
        assert store.client.exists(*keys) == 0
        assert store.client.hget(store.names_key, "short-lived") is None  # the stale name is gone
    again = store.create("short-lived")  # the name is free again
    assert again.id != info.id and store.get("short-lived").head == 0


def test_an_expired_name_can_be_created_again(store: Store) -> None:
    """``create`` takes over the name of an expired session even if nothing looked it up since."""
    info = store.create("lapsed")
    info.ttl = 0.5
    store.update(info)
    time.sleep(1.0)
    again = store.create("lapsed")
    assert again.id != info.id
    assert store.get("lapsed").id == again.id


def test_a_deleted_session_takes_no_writes(store: Store) -> None:
    """Writing to a session that was deleted meanwhile is a StoreError and brings nothing back."""
    info = store.create("gone")
    _write(store, info, 1)
    store.delete(info)
    with pytest.raises(StoreError):
        _write(store, info, 2)
    with pytest.raises(StoreError):
        store.update(info)
    assert store.find("gone") is None and store.find(info.id) is None
    with pytest.raises(VersionNotFoundError):
        store.read_version(info, 1)


# -- Redis alone ---------------------------------------------------------------------------


def test_a_session_lives_in_one_cluster_slot(redis_store: RedisStore) -> None:
    info = redis_store.create("one-slot")
    for n in range(1, 4):
        _write(redis_store, info, n)
    keys = redis_store.session_keys(info)
    assert keys == [
        f"{redis_store.prefix}:{{{info.id}}}:{what}" for what in ("record", "head", "meta", "events", "v:1", "v:2", "v:3")
    ]
    # every key the session has, found by scanning the whole keyspace (every node of a cluster)
    scanned = {key.decode() for key in redis_store.client.scan_iter(match=f"{redis_store.prefix}:{{{info.id}}}:*")}
    assert scanned == set(keys)

    client = redis_store.client
    if redis_store.location.startswith("redis+cluster://"):
        slots = {client.execute_command("CLUSTER KEYSLOT", key) for key in keys}
        nodes = {client.get_node_from_key(key).name for key in keys}
        assert len(nodes) == 1
    else:
        slots = {key_slot(key.encode()) for key in keys}
    assert slots == {key_slot(info.id.encode())}


def test_subscriber_sees_versions_written_by_another_client(
    redis_backend: Backend, opened: Callable[[Backend], Store]
) -> None:
    writer, reader = opened(redis_backend), opened(redis_backend)
    assert isinstance(reader, RedisStore)
    received: list[dict[str, Any]] = []

    with reader.subscribe() as notices:

        def listen() -> None:  # iterate in a thread, as a daemon would
            for notice in notices:
                received.append(notice)
                if len(received) == 2:
                    return

        listener = threading.Thread(target=listen)
        listener.start()
        info = writer.create("watched")
        first = _write(writer, info, 1)
        _write(writer, info, 2, kind="delta", parent=1, base=1)
        listener.join(timeout=10)
        assert not listener.is_alive()
        assert notices.get(timeout=0.2) is None  # nothing else was published

    assert received == [
        {"session": info.id, "name": "watched", "version": 1, "kind": "full", "created_at": first.created_at},
        {"session": info.id, "name": "watched", "version": 2, "kind": "delta", "created_at": received[1]["created_at"]},
    ]


def test_events_stream_has_one_entry_per_version(redis_store: RedisStore) -> None:
    info = redis_store.create("events")
    written = [_write(redis_store, info, n) for n in (1, 2, 3)]
    redis_store.replace_version(info, _version(2, blob_bytes=3), b"new")  # not a new version
    with pytest.raises(ConflictError):
        _write(redis_store, info, 3)  # a conflict adds nothing either
    events = redis_store.events(info)
    assert [e["version"] for e in events] == ["1", "2", "3"]
    assert events[0] == {
        "version": "1", "kind": "full", "created_at": repr(written[0].created_at), "blob_bytes": str(len(_blob(1)))
    }  # fmt: skip
    assert redis_store.client.xlen(f"{redis_store.prefix}:{{{info.id}}}:events") == 3


def test_stored_bytes_counts_what_redis_holds(redis_store: RedisStore) -> None:
    info = redis_store.create("sizes")
    version = _write(redis_store, info, 1)
    client = redis_store.client
    meta = client.hget(f"{redis_store.prefix}:{{{info.id}}}:meta", "1")
    blob_key = f"{redis_store.prefix}:{{{info.id}}}:v:1"
    assert version.stored_bytes >= len(_blob(1)) + len(meta) + len(blob_key)
    assert redis_store.versions(info)[0].stored_bytes == version.stored_bytes


def test_tls(tmp_path: Path) -> None:
    tls = make_tls_files(tmp_path / "tls")
    with RedisServer(tmp_path / "server", tls=tls) as server:
        store = open_store(server.url)  # rediss://127.0.0.1:PORT/0?ssl_ca_certs=CA
        try:
            info = store.create("secure")
            _write(store, info, 1)
            assert store.read_version(info, 1) == _blob(1)
        finally:
            store.close()
        # without the CA the server's certificate is not trusted
        untrusted = open_store(f"rediss://127.0.0.1:{server.port}/0?retries=0")
        try:
            with pytest.raises(StoreUnavailableError, match="certificate"):
                untrusted.find("secure")
        finally:
            untrusted.close()
        # ssl_cert_reqs goes through to redis-py like every other connection option
        unchecked = open_store(f"rediss://127.0.0.1:{server.port}/0?ssl_cert_reqs=none")
        try:
            assert unchecked.get("secure").head == 1
        finally:
            unchecked.close()


def test_urls_and_messages_never_show_the_password() -> None:
    port = free_port()  # nothing listens there
    store = open_store(f"redis://alice:hunter2-secret@127.0.0.1:{port}/3?prefix=team.a&retries=1")
    try:
        assert isinstance(store, RedisStore)
        assert store.location == f"redis://alice@127.0.0.1:{port}/3?prefix=team.a"
        info = SessionInfo("0" * 32, "x")
        assert store.version_location(info, 3) == f"{store.location} key team.a:{{{'0' * 32}}}:v:3"
        with pytest.raises(StoreUnavailableError) as caught:
            store.find("x")
        message = str(caught.value)
        assert f"127.0.0.1:{port}" in message and "hunter2" not in message
    finally:
        store.close()

    cluster = open_store(f"rediss+cluster://:hunter2-secret@127.0.0.1:{port},127.0.0.1:{free_port()}?retries=0")
    try:
        with pytest.raises(StoreUnavailableError) as caught:
            cluster.list()
        assert "hunter2" not in str(caught.value) and "rediss+cluster://127.0.0.1" in str(caught.value)
    finally:
        cluster.close()


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/0?colour=blue",  # not an option of ours nor of redis-py
        "redis://127.0.0.1:6379/0?prefix=a{b}",  # would break the hash tags
        "redis://127.0.0.1:6379/0?retries=many",
        "redis://127.0.0.1:6379,127.0.0.1:6380/0",  # several hosts are for a cluster
        "redis+cluster://127.0.0.1:6379/2",  # a cluster has database 0 only
        "redis://127.0.0.1:port/0",
        "redis:///0",
    ],
)
def test_bad_urls_are_usage_errors(url: str) -> None:
    with pytest.raises(UsageError):
        open_store(url)


def _consistent(store: Store, info: SessionInfo, blob_of: Callable[[int], bytes]) -> int:
    """Check that every version present is whole and numbered without gaps; the head."""
    versions = store.versions(info)
    numbers = [v.version for v in versions]
    assert numbers == list(range(1, len(numbers) + 1))
    for version in versions:
        blob = store.read_version(info, version.version)
        assert blob == blob_of(version.version) and version.blob_bytes == len(blob)
    head = store.get(info.id).head
    assert head == len(numbers)
    return head


def test_redis_stopping_and_restarting(tmp_path: Path) -> None:
    """Writes fail with StoreUnavailableError while Redis is down; after it restarts (with the data it
    saved) the same store object works again and no version was left half-written."""
    with RedisServer(tmp_path / "server", password="pw-not-in-messages") as server:
        store = open_store(_with_options(server.url, prefix="restart"))
        try:
            info = store.create("survivor")
            written: list[int] = []
            failure: list[BaseException] = []
            started = threading.Event()

            def keep_writing() -> None:
                n = 1
                try:
                    while True:
                        blob = _blob(n)
                        store.write_version(info, _version(n, blob_bytes=len(blob)), blob)
                        written.append(n)
                        if n == 20:
                            started.set()
                        n += 1
                except StoreError as exc:
                    failure.append(exc)
                finally:
                    started.set()

            writer = threading.Thread(target=keep_writing)
            writer.start()
            assert started.wait(timeout=30)
            server.stop(save=True)  # while the writer is writing
            writer.join(timeout=60)
            assert not writer.is_alive()
            assert len(written) >= 20
            assert isinstance(failure[0], StoreUnavailableError), failure

            began = time.monotonic()
            with pytest.raises(StoreUnavailableError) as caught:
                store.read_version(info, 1)
            assert time.monotonic() - began < 15  # a few attempts with backoff, not a hang
            assert f"127.0.0.1:{server.port}" in str(caught.value)
            assert "pw-not-in-messages" not in str(caught.value)

            server.start()  # same port, reloads what SHUTDOWN SAVE wrote
            head = _consistent(store, info, _blob)
            assert head >= len(written)  # a version whose reply was lost may have landed
            _write(store, info, head + 1)
            assert store.read_version(info, head + 1) == _blob(head + 1)
        finally:
            store.close()


def test_cluster_node_stopping_and_restarting(tmp_path: Path) -> None:
    """A cluster whose node serving a session goes down: StoreUnavailableError, then it recovers."""
    with RedisClusterServers(tmp_path / "cluster") as cluster:
        store = open_store(cluster.url)
        try:
            assert isinstance(store, RedisStore)
            info = store.create("sharded")
            _write(store, info, 1)
            owner_port = store.client.get_node_from_key(store.session_keys(info)[0]).port
            node = next(n for n in cluster.nodes if n.port == owner_port)

            node.stop(save=True)
            with pytest.raises(StoreUnavailableError):
                _write(store, info, 2)

            node.start()
            cluster.wait_ok()
            assert _consistent(store, info, _blob) == 1
            _write(store, info, 2)
            assert store.read_version(info, 2) == _blob(2)
        finally:
            store.close()
