"""The ``psp`` command.

Every error psp_cdp raises on purpose ends the command with one line on stderr and a
non-zero exit code (1; 2 for a usage mistake argparse catches, and for any error of
``psp status``, whose 1 means "expired"); no traceback.
"""

from __future__ import annotations

import argparse
import getpass
import json
import math
import os
import signal
import stat
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import trio

from . import __version__
from .cdp import leaf_errors, open_cdp
from .errors import PspError, SessionNotFoundError, UsageError
from .snapshot import codec, diff, playwright
from .snapshot.model import PROTOCOL_VERSION, BrowserSessionState, RecordingState, check_values, text, uncovered_list
from .state import components
from .state.auth import (
    OBSERVE_OPTION,
    Validity,
    open_credentials,
    parse_duration,
    seal_credentials,
    validity,
)
from .state.pages import origin_of
from .client import runner
from .daemon.apikeys import SCOPES
from .store import SessionInfo, Sessions, VersionInfo, check_name, default_store_path, open_store, parse_tags
from .store.sessions import CIPHERS, FULL_EVERY, Captured, split_ref
from .store.keys import Keyring
from .store.filesystem import atomic_write
from .record import export, formats
from .record.player import Step
from .record.recorder import Recorder
from .record.session import record as record_session, replay as replay_session
from .snapshot.model import RecordedEvent

__all__ = ["main"]


def _split(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def _when(timestamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp)) if timestamp else "-"


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if n < 1024 or unit == "MiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def _counts(counts: dict[str, int]) -> str:
    labels = {
        "cookies": "cookies",
        "local_storage": "localStorage items",
        "session_storage": "sessionStorage items",
        "tabs": "tabs",
        "auth": "tokens",
    }
    return ", ".join(f"{n} {labels.get(name, name)}" for name, n in counts.items() if n)


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def _sessions(args: argparse.Namespace) -> Sessions:
    return Sessions(open_store(args.store), cipher=getattr(args, "cipher", None))


def _policy(args: argparse.Namespace) -> dict[str, Any]:
    """The versioning policy options given on the command line."""
    if args.keep is not None and args.keep < 1:
        raise UsageError("--keep takes a number of versions, 1 or more")
    if args.full_every is not None and args.full_every < 1:
        raise UsageError("--full-every takes a number of versions, 1 or more")
    return {
        "keep": args.keep,
        "ttl": parse_duration(args.ttl) if args.ttl else None,
        "full_every": args.full_every,
    }


def _version_line(version: VersionInfo) -> str:
    return f"version {version.version} ({version.kind}, {_size(version.stored_bytes)} stored)"


# -- commands ---------------------------------------------------------------


async def cmd_capture(args: argparse.Namespace) -> int:
    check_name(args.name)
    captured = await runner.capture(
        args.cdp,
        args.name,
        store=args.store,
        context=args.context,
        only=_split(args.only),
        skip=_split(args.skip),
        description=args.description,
        tags=parse_tags(args.tag),
        policy=_policy(args),
        origins=args.origin or (),
        options=(["dom_snapshot"] if args.dom_snapshot else []) + ([OBSERVE_OPTION] if args.auth_headers else []),
        cipher=args.cipher,
        no_daemon=args.no_daemon,
    )
    return _print_captured(args, captured.info, captured.version, captured.origins_covered, captured.uncovered)


def _print_captured(
    args: argparse.Namespace, info: SessionInfo, version: VersionInfo, covered: list[str], uncovered: list[dict[str, str]]
) -> int:
    if args.json:
        _print_json({**info.as_dict(), "version": version.as_dict(), "origins_covered": covered, "uncovered": uncovered})
        return 0
    print(f"captured {info.name} {_version_line(version)} ({info.id}): {_counts(info.components)}")
    print(f"origins covered: {', '.join(covered) or 'none'}")
    for item in uncovered:
        print(f"not captured: {item['what']}: {item['reason']}")
    return 0


async def cmd_restore(args: argparse.Namespace) -> int:
    result = await runner.restore(
        args.cdp,
        args.ref,
        store=args.store,
        context=args.context,
        only=_split(args.only),
        skip=_split(args.skip),
        clean=args.clean,
        options=["service_workers"] if args.service_workers else [],
        no_daemon=args.no_daemon,
    )
    return _print_restored(args, result)


#: Exit status of a restore that completed without restoring everything the state held.
PARTIAL = 3


def _print_restored(args: argparse.Namespace, result: dict[str, Any]) -> int:
    """Print what a restore did; 0 when it restored everything, :data:`PARTIAL` when it names what it could not."""
    missing = result.get("missing") or []
    if args.json:
        _print_json(result)
        return PARTIAL if missing else 0
    where = f"context {result['context']}" if result.get("context") else "the default context"
    print(f"restored {result['name']} into {where}: {_counts(result['restored']) or 'nothing'}")
    for note in result["notes"]:
        print(f"{'not restored' if note in missing else 'note'}: {note}")
    if missing:
        print(f"psp: the restore is partial: {len(missing)} thing(s) not restored (listed above)", file=sys.stderr)
    return PARTIAL if missing else 0


async def cmd_ls(args: argparse.Namespace) -> int:
    listing = await _sessions(args).list(parse_tags(args.tag))
    if args.json:
        _print_json([s.as_dict() for s in listing])
        return 0
    if not listing:
        print("no sessions")
        return 0
    rows = [("NAME", "ID", "VERSION", "CAPTURED", "SIZE", "TAGS")]
    for s in listing:
        tags = ",".join(f"{k}={v}" for k, v in sorted(s.tags.items()))
        rows.append((s.name, s.id, str(s.head or "-"), _when(s.captured_at), _size(s.size) if s.size else "-", tags))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return 0


def _describe(info: SessionInfo, state: BrowserSessionState) -> dict[str, Any]:
    return {
        **info.as_dict(),
        "protocol_version": state.version,
        "browser": state.source.browser,
        "cookies": [
            {
                "name": c.name,
                "domain": c.domain,
                "path": c.path,
                "expires": c.expires if c.HasField("expires") else None,
                "secure": c.secure,
                "http_only": c.http_only,
                "partitioned": c.partitioned,
            }
            for c in state.storage.cookies
        ],
        "local_storage": {s.storage_key or s.origin: len(s.items) for s in state.storage.local_storage},
        "tabs": [
            {
                "url": t.navigation.current_url,
                "title": text(t.navigation.entries[t.navigation.current_index].title) if t.navigation.entries else "",
                "entries": len(t.navigation.entries),
                "session_storage": {s.origin: len(s.items) for s in t.session_storage},
            }
            for t in state.history.tabs
        ],
        "tokens": [
            {
                "type": t.type,
                "domain": t.domain,
                "source": t.source,
                "expires_at": t.expires_at / 1000 if t.HasField("expires_at") else None,
                "http_only": t.is_http_only,
            }
            for t in state.auth.tokens
        ],
        "credentials": (
            {"origin": state.auth.credentials.origin, "key_id": state.auth.credentials.key_id}
            if state.auth.HasField("credentials")
            else None
        ),
        "origins_covered": list(state.report.origins_covered),
        "uncovered": uncovered_list(state.report),
    }


async def cmd_show(args: argparse.Namespace) -> int:
    info, state = await _sessions(args).load(args.ref)
    described = _describe(info, state)
    if args.json:
        _print_json(described)
        return 0
    print(f"{info.name}  ({info.id})")
    if info.description:
        print(f"  {info.description}")
    if info.tags:
        print("  tags: " + ", ".join(f"{k}={v}" for k, v in sorted(info.tags.items())))
    print(f"  captured {_when(info.captured_at)} from {state.source.browser or 'unknown browser'}; {_size(info.size)} stored")
    print(f"  {_counts(info.components)}")
    if described["cookies"]:
        print("  cookies:")
        for c in described["cookies"]:
            flags = [f for f, on in (("secure", c["secure"]), ("httpOnly", c["http_only"]), ("partitioned", c["partitioned"])) if on]
            expires = _when(c["expires"]) if c["expires"] is not None else "session"
            print(f"    {c['name']}  {c['domain']}{c['path']}  {expires}  {' '.join(flags)}".rstrip())
    if described["local_storage"]:
        print("  localStorage:")
        for origin, n in described["local_storage"].items():
            print(f"    {origin}  {n} item(s)")
    if described["tabs"]:
        print("  tabs:")
        for tab in described["tabs"]:
            print(f"    {tab['url']}  {tab['title']!r}  {tab['entries']} history entr{'y' if tab['entries'] == 1 else 'ies'}")
    if described["tokens"]:
        print("  tokens:")
        for t in described["tokens"]:
            if t["expires_at"] is not None:
                expires = f"expires {_when(t['expires_at'])}"
            else:
                expires = "ends with the browser session" if t["type"] == "session-cookie" else "no known expiry"
            print(f"    {t['type']}  {t['domain'] or '-'}  {t['source']}  {expires}")
    if described["credentials"]:
        print(f"  credentials: for {described['credentials']['origin']} (sealed with key {described['credentials']['key_id']})")
    for item in described["uncovered"]:
        print(f"  not captured: {item['what']}: {item['reason']}")
    return 0


def _relative(seconds: float) -> str:
    """``in 1h 5m`` or ``3d 2h ago``: the two largest units."""
    left = abs(int(seconds))
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if left >= size or (unit == "s" and not parts):
            parts.append(f"{left // size}{unit}")
            left %= size
    span = " ".join(parts[:2])
    return f"in {span}" if seconds >= 0 else f"{span} ago"


def _status_dict(info: SessionInfo, result: Validity, now: float, within: float) -> dict[str, Any]:
    token = result.token
    return {
        "id": info.id,
        "name": info.name,
        "status": result.status,
        "valid": result.valid,
        "expires_at": result.expires_at / 1000 if result.expires_at is not None else None,
        "expires_in": (result.expires_at / 1000 - now) if result.expires_at is not None else None,
        "within": within,
        "tokens": result.tokens,
        "decided_by": (
            {"type": token.type, "domain": token.domain, "source": token.source} if token is not None else None
        ),
    }


async def cmd_status(args: argparse.Namespace) -> int:
    within = parse_duration(args.within) if args.within else 0.0
    info, state = await _sessions(args).load(args.ref)
    now = time.time()
    result = validity(state, now * 1000, within * 1000)
    if args.json:
        _print_json(_status_dict(info, result, now, within))
    elif result.expires_at is None:
        why = f"{result.tokens} token(s), none that ends it" if result.tokens else "no authentication tokens found"
        print(f"{info.name}: valid; no known expiry ({why})")
    else:
        expires = result.expires_at / 1000
        label = {"valid": "valid", "expiring": f"expiring within {args.within}", "expired": "expired"}[result.status]
        verb = "expired" if result.status == "expired" else "expires"
        print(f"{info.name}: {label}; {verb} {_when(expires)} ({_relative(expires - now)})")
        if result.token is not None:
            token = result.token
            print(f"  decided by {token.type} from {token.source} ({token.domain or 'no domain'})")
    return 0 if result.valid else 1


def _read_password() -> str:
    password = os.environ.get("PSP_PASSWORD")
    if password is None:
        if sys.stdin is not None and not sys.stdin.isatty():
            password = sys.stdin.read()
            password = password[:-1] if password.endswith("\n") else password
            password = password[:-1] if password.endswith("\r") else password
        else:
            password = getpass.getpass("password: ")
    if not password:
        raise UsageError("the password is empty")
    return password


async def cmd_credentials_set(args: argparse.Namespace) -> int:
    origin = origin_of(args.origin)
    if origin is None:
        raise UsageError(f"{args.origin}: give the http(s) origin the credentials log in to")
    sessions = _sessions(args)
    info, state = await sessions.load(args.ref)
    password = await trio.to_thread.run_sync(_read_password)
    key_id, key = await trio.to_thread.run_sync(Keyring().current)
    sealed = seal_credentials(
        session_id=info.id, origin=origin, username=args.username, password=password, key_id=key_id, key=key
    )
    state.auth.credentials.CopyFrom(sealed)
    await sessions.save(info.name, state)
    print(f"credentials for {origin} stored in {info.name}, sealed with key {key_id}")
    return 0


async def cmd_credentials_show(args: argparse.Namespace) -> int:
    info, state = await _sessions(args).load(args.ref)
    if not state.auth.HasField("credentials"):
        raise UsageError(f"session {info.name!r} has no credentials (psp credentials set {info.name} ...)")
    sealed = state.auth.credentials
    key = await trio.to_thread.run_sync(Keyring().get, sealed.key_id)
    username, password = open_credentials(sealed, session_id=info.id, key=key)
    shown: dict[str, Any] = {"origin": sealed.origin, "username": username, "key_id": sealed.key_id}
    if args.reveal:
        shown["password"] = password
    if args.json:
        _print_json(shown)
        return 0
    for field, value in shown.items():
        print(f"{field}: {value}")
    return 0


async def cmd_credentials_clear(args: argparse.Namespace) -> int:
    sessions = _sessions(args)
    info, state = await sessions.load(args.ref)
    if not state.auth.HasField("credentials"):
        print(f"{info.name} has no credentials")
        return 0
    state.auth.ClearField("credentials")
    await sessions.save(info.name, state)
    print(f"removed the credentials of {info.name}")
    return 0


async def cmd_rm(args: argparse.Namespace) -> int:
    info = await _sessions(args).delete(args.ref)
    print(f"removed {info.name} ({info.id})")
    return 0


async def cmd_export(args: argparse.Namespace) -> int:
    if args.format in _RECORDING_FORMATS:
        data = await _export_recording(args)
    else:
        _, state = await _sessions(args).load(args.ref)
        if args.format == "json":
            data = codec.to_json(state).encode("utf-8")
        elif args.format == "psp":
            data = codec.encode(state)
        elif args.format == "playwright":
            storage_state, not_carried = playwright.to_storage_state(state)
            data = (json.dumps(storage_state, indent=2) + "\n").encode("utf-8")
            for what in not_carried:
                print(f"not in Playwright's format: {what}", file=sys.stderr)
        else:
            raise UsageError(f"export format {args.format!r} is not supported by this version (use {', '.join(_FORMATS)})")
    write_output(args.output, data)
    if args.output != "-":
        print(f"exported {args.ref} to {args.output} ({args.format}, {_size(len(data))})", file=sys.stderr)
    return 0


def write_output(path: str, data: bytes) -> None:
    """Write ``data`` where the user pointed: ``-`` is standard output; a path that exists and is not a
    regular file (a device, a FIFO, a link such as ``/dev/stdout``) is written in place; any other path
    is replaced atomically by a new file only its owner can read (exports hold cookie and storage values)."""
    if path == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    try:
        special = not stat.S_ISREG(os.lstat(path).st_mode)
    except FileNotFoundError:
        special = False
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None
    try:
        if special:
            with open(path, "wb") as fh:
                fh.write(data)
            return
        atomic_write(os.path.abspath(path), data)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None


#: Scripts that replay a version's recording: export only.
_SCRIPT_FORMATS = {
    "playwright-python": export.to_playwright_python,
    "playwright-test": export.to_playwright_test,
    "selenium-python": export.to_selenium_python,
}
#: Formats of export and import; those from "recorder" on hold a version's recording.
_FORMATS = ("psp", "json", "playwright", "recorder", "har", *_SCRIPT_FORMATS)
_RECORDING_FORMATS = ("recorder", "har", *_SCRIPT_FORMATS)


async def _recorded_state(args: argparse.Namespace) -> tuple[SessionInfo, int, BrowserSessionState]:
    """The version ``args.ref`` names (NAME@N), else the newest version of NAME that holds a recording;
    with its number."""
    sessions = _sessions(args)
    name, at = split_ref(args.ref)
    if at is not None:
        info, state = await sessions.load(args.ref)
        if _has_recording(state):
            return info, at, state
    else:
        info, versions = await sessions.versions(name)
        for version in sorted(versions, key=lambda v: v.version, reverse=True):
            info, state = await sessions.load(name, version.version)
            if _has_recording(state):
                return info, version.version, state
    raise UsageError(f"{args.ref} has no recording")


def _has_recording(state: BrowserSessionState) -> bool:
    recording = state.recording
    return state.HasField("recording") and bool(recording.events or recording.exchanges or recording.mutations)


def _json_bytes(data: Any) -> bytes:
    """JSON as other tools write it: indented UTF-8 (escaped where a string holds a lone surrogate)."""
    try:
        return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    except UnicodeEncodeError:
        return (json.dumps(data, indent=2) + "\n").encode("ascii")


def _script_store(store: str | None) -> str:
    """The store a script restores from when PSP_STORE is unset: the one exported from, a path made absolute."""
    store = store or os.environ.get("PSP_STORE") or "local"
    return store if "://" in store or store == "local" else os.path.abspath(store)


async def _export_recording(args: argparse.Namespace) -> bytes:
    info, version, state = await _recorded_state(args)
    if args.format in _SCRIPT_FORMATS:
        options = {"start_urls": [t.navigation.current_url for t in state.history.tabs]} if args.format == "selenium-python" else {}
        script = _SCRIPT_FORMATS[args.format](state.recording, info.name, version, _script_store(args.store), **options)
        return script.encode("utf-8")
    if args.format == "recorder":
        return _json_bytes(formats.to_user_flow(state.recording, info.name))
    return _json_bytes(formats.to_har(state.recording, creator_version=__version__))


def _json_format(parsed: Any) -> str:
    """The format of parsed JSON: har (log.entries), recorder (steps), playwright (a storageState), else json."""
    if isinstance(parsed, dict) and isinstance(parsed.get("log"), dict) and "entries" in parsed["log"]:
        return "har"
    if isinstance(parsed, dict) and "steps" in parsed:
        return "recorder"
    return "playwright" if playwright.is_storage_state(parsed) else "json"


@dataclass
class Imported:
    """A file to import: its bytes, its format, and its JSON once parsed (a file is parsed once)."""

    data: bytes
    format: str
    _json: Any = None
    _parsed: bool = False

    def json(self, what: str) -> Any:
        """The file's JSON; :class:`UsageError` naming ``what`` it should have been when it is not JSON."""
        if not self._parsed:
            try:
                self._json = json.loads(self.data)
            except (ValueError, UnicodeDecodeError, RecursionError) as exc:
                raise UsageError(f"not {what}: {exc}") from None
            self._parsed = True
        return self._json


def import_format(data: bytes, given: str | None) -> Imported:
    """A file to import, in the format ``given``, else the one its content shows."""
    if given in _SCRIPT_FORMATS:
        raise UsageError(f"{given} is a script psp writes (psp export --format {given}); it cannot be imported")
    if given:
        return Imported(data, given)
    if codec.is_snapshot(data):
        return Imported(data, "psp")
    found = Imported(data, "json")
    try:
        found.format = _json_format(found.json("JSON"))
    except UsageError:
        pass  # not JSON at all: read as PSP JSON, which says what is wrong
    return found


def parse_state(file: Imported) -> BrowserSessionState:
    """The state a file of a state format holds, its values checked; a :class:`PspError` for anything else."""
    fmt, data = file.format, file.data
    try:
        if fmt == "psp":
            state = codec.decode(data)
            if not isinstance(state, BrowserSessionState):
                raise UsageError("it holds the changes of one version to another (a delta), not a state; export a whole version")
        elif fmt == "json":
            state = codec.from_json(data.decode("utf-8"))
        elif fmt == "playwright":
            state = playwright.from_storage_state(file.json("a Playwright storageState"))
        else:
            raise UsageError(f"import format {fmt!r} is not supported by this version (use {', '.join(_FORMATS)})")
        check_values(state)
    except UnicodeDecodeError:
        raise UsageError("neither a psp snapshot nor JSON") from None
    except PspError:
        raise
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return state


def parse_recording(file: Imported, recording: RecordingState) -> str:
    """Replace ``recording``'s events (recorder) or exchanges (har) with a file's; what was imported, in words."""
    return _recording_update(file.format, file.json("JSON"), recording)


async def cmd_import(args: argparse.Namespace) -> int:
    check_name(args.name)
    try:
        with (sys.stdin.buffer if args.file == "-" else open(args.file, "rb")) as fh:
            data = fh.read()
    except OSError as exc:
        raise UsageError(f"{args.file}: {exc.strerror}") from None
    file = import_format(data, args.format)
    if file.format in _RECORDING_FORMATS:
        return await _import_recording(args, file)
    try:
        state = parse_state(file)
    except PspError as exc:
        raise type(exc)(f"{args.file}: {exc}") from None
    if file.format == "playwright":
        for uncovered in state.report.uncovered:
            print(f"not imported: {uncovered.what}: {uncovered.reason}", file=sys.stderr)
    info, version = await _sessions(args).save(args.name, state, description=args.description, tags=parse_tags(args.tag))
    print(f"imported {args.file} as {info.name} {_version_line(version)} ({info.id}): {_counts(info.components)}")
    return 0


async def _latest_state(sessions: Sessions, name: str) -> BrowserSessionState:
    """The latest state of the session ``name``; an empty state when there is none."""
    try:
        info = await sessions.get(name)
    except SessionNotFoundError:
        info = None
    if info is None or not info.head:
        return BrowserSessionState(version=PROTOCOL_VERSION)
    return (await sessions.load(name))[1]


def _recording_update(fmt: str, parsed: Any, recording: RecordingState) -> str:
    """Put what the user flow or HAR ``parsed`` holds into ``recording``; what was imported, as words."""
    if fmt == "recorder":
        events = formats.from_user_flow(parsed).events
        del recording.events[:]
        recording.events.extend(events)
        what, count = "input", f"{len(events)} events"
    else:
        start = formats.har_start_time(parsed)
        if not recording.start_time and start is not None:
            recording.start_time = start
        # times since the recording's start; since the first entry for a HAR that began before it
        within = start is not None and start >= recording.start_time
        exchanges = formats.from_har(parsed, start_time=recording.start_time if within else None)
        del recording.exchanges[:]
        recording.exchanges.extend(exchanges)
        what, count = "network", f"{len(exchanges)} exchanges"
    if what not in recording.recorded:
        recording.recorded.append(what)
    ends = [e.timestamp for e in [*recording.events, *recording.mutations]]
    ends += [x.timestamp + x.duration for x in recording.exchanges]
    recording.duration = math.ceil(max(ends, default=0))
    return count


async def _import_recording(args: argparse.Namespace, file: Imported) -> int:
    """Store the session's latest state again with the recording's events (recorder) or exchanges (har) replaced."""
    sessions = _sessions(args)
    state = await _latest_state(sessions, args.name)
    try:
        count = parse_recording(file, state.recording)
    except PspError as exc:
        raise type(exc)(f"{args.file}: {exc}") from None
    info, version = await sessions.save(args.name, state, description=args.description, tags=parse_tags(args.tag))
    print(f"imported {args.file} as {info.name} {_version_line(version)} ({info.id}): {count}")
    return 0


async def cmd_log(args: argparse.Namespace) -> int:
    info, versions = await _sessions(args).versions(args.ref)
    if args.json:
        _print_json([v.as_dict() for v in versions])
        return 0
    if not versions:
        print(f"{info.name} has no versions yet")
        return 0
    rows = [("VERSION", "KIND", "STORED", "CREATED", "SEALED", "CHANGES")]
    for v in reversed(versions):
        changes = ", ".join(
            f"{component} " + " ".join(f"{sign}{counts[op]}" for sign, op in (("+", "added"), ("~", "changed"), ("-", "removed")) if counts[op])
            for component, counts in v.changes.items()
        )
        sealed = f"{v.cipher} {v.key_id}" if v.key_id else "no"
        what = changes if v.kind == "delta" else _counts(v.components)
        rows.append((str(v.version), v.kind, _size(v.stored_bytes), _when(v.created_at), sealed, what))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return 0


async def cmd_diff(args: argparse.Namespace) -> int:
    sessions = _sessions(args)
    info_a, number_a, before = await sessions.items(args.a)
    info_b, number_b, after = await sessions.items(args.b)
    changes = diff.compare(before, after)
    ends = {"from": {"name": info_a.name, "version": number_a}, "to": {"name": info_b.name, "version": number_b}}
    if args.json:
        _print_json({**ends, "summary": diff.summary(changes), "changes": [c.__dict__ for c in changes]})
        return 0
    print(f"{info_a.name}@{number_a} -> {info_b.name}@{number_b}: {len(changes)} item(s) differ")
    signs = {"added": "+", "changed": "~", "removed": "-"}
    for change in changes:
        print(f"{signs[change.op]} {change.component}: {change.what}")
    return 0


async def _stop_on_signal(stop: trio.Event) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            stop.set()
            return


async def cmd_watch(args: argparse.Namespace) -> int:
    check_name(args.name)
    sessions = _sessions(args)
    stop = trio.Event()

    def started(captured: Captured) -> None:
        assert captured.version is not None
        print(f"watching {captured.info.name}: {_version_line(captured.version)}; Ctrl-C to stop", flush=True)

    def written(captured: Captured, batch: set[str]) -> None:
        assert captured.version is not None
        print(f"{_version_line(captured.version)}: {', '.join(sorted(batch))} changed", flush=True)

    async with open_cdp(args.cdp) as connection, trio.open_nursery() as nursery:
        nursery.start_soon(_stop_on_signal, stop)
        count = await sessions.watch(
            connection,
            args.name,
            context=args.context,
            cookie_interval=args.cookie_interval,
            debounce=args.debounce,
            stop=stop,
            started=started,
            written=written,
            **_policy(args),
        )
        nursery.cancel_scope.cancel()
    print(f"stopped; {count} version(s) written")
    return 0


async def cmd_record(args: argparse.Namespace) -> int:
    check_name(args.name)
    if args.duration is not None and args.duration <= 0:
        raise UsageError("--duration takes a number of seconds above 0")
    sessions = _sessions(args)
    stop = trio.Event()

    def started(recorder: Recorder) -> None:
        what = "input" + ("" if args.no_network else ", network") + (", DOM mutations" if args.dom else "")
        until = f"for {args.duration:g}s" if args.duration else "until Ctrl-C"
        print(f"recording {args.name} ({what}) {until}", flush=True)

    def on_event(event: RecordedEvent) -> None:
        if args.verbose and event.type != "mutation":
            print(f"{event.timestamp / 1000:9.3f}s  tab {event.tab}  {event.type:<10} {event.target}", flush=True)

    async with open_cdp(args.cdp) as connection, trio.open_nursery() as nursery:
        nursery.start_soon(_stop_on_signal, stop)
        if args.duration:
            async def stop_later() -> None:
                await trio.sleep(args.duration)
                stop.set()

            nursery.start_soon(stop_later)
        info, version, state = await record_session(
            connection, sessions, args.name, stop, context=args.context, network=not args.no_network, dom=args.dom,
            started=started, on_event=on_event, **_policy(args),
        )
        nursery.cancel_scope.cancel()
    recording = state.recording
    print(
        f"recorded {info.name} {_version_line(version)}: {len(recording.events)} event(s), "
        f"{len(recording.exchanges)} network exchange(s), {len(recording.mutations)} DOM mutation batch(es) "
        f"in {recording.duration / 1000:.1f}s"
    )
    return 0


async def cmd_replay(args: argparse.Namespace) -> int:
    speed: float | None = 1.0
    if args.max:
        speed = None
    elif args.speed is not None:
        if args.speed <= 0:
            raise UsageError("--speed takes a factor above 0 (2 plays twice as fast)")
        speed = args.speed

    def on_step(step: Step) -> None:
        if args.json:
            return
        reason = f": {step.reason}" if step.reason else ""
        print(f"{step.index + 1:>5}  {step.scheduled / 1000:8.3f}s  {step.type:<10} {step.target or '-'}  {step.outcome}{reason}", flush=True)

    async with open_cdp(args.cdp) as connection:
        report = await replay_session(
            connection, _sessions(args), args.ref, context=args.context, speed=speed, network=args.network,
            timeout=args.timeout, ignore_fields=args.ignore_field or (), on_step=on_step,
        )
    if args.json:
        _print_json(report.as_dict())
    else:
        counts = report.counts()
        print(f"replayed {len(report.steps)} step(s): {counts['done']} done, {counts['retried']} retried, "
              f"{counts['skipped']} skipped, {counts['failed']} failed")
        if report.network == "mock":
            print(f"network: {report.answered} request(s) answered from the recording, {len(report.fallbacks)} by a fallback, "
                  f"{len(report.unmatched)} unmatched (404)")
            for fallback in report.fallbacks:
                print(f"  fallback: {fallback.method} {fallback.url} ({fallback.how})")
            for unmatched in report.unmatched:
                print(f"  unmatched: {unmatched.method} {unmatched.url}")
        if not report.compared:
            print("the recording has no end state to compare with")
        elif report.as_recorded:
            print("ended as recorded")
        else:
            print(f"ended differently ({len(report.differences)} difference(s)):")
            for difference in report.differences:
                print(f"  {difference}")
    if report.failed or (args.strict and report.differences):
        return 1
    return 0


async def cmd_keys_list(args: argparse.Namespace) -> int:
    keyring = Keyring()
    ids = await trio.to_thread.run_sync(keyring.ids)
    current = await trio.to_thread.run_sync(keyring.current_id)
    usage: dict[str, int] = {}
    if args.store is not None or os.environ.get("PSP_STORE") or os.path.isdir(default_store_path()):
        sessions = _sessions(args)
        for info in await sessions.list():
            for version in (await sessions.versions(info.id))[1]:
                if version.key_id:
                    usage[version.key_id] = usage.get(version.key_id, 0) + 1
    listed = sorted(set(ids) | set(usage) | ({current} if current else set()))
    rows = [
        {"id": key_id, "current": key_id == current, "available": key_id in ids or key_id == current, "versions": usage.get(key_id, 0)}
        for key_id in listed
    ]
    if args.json:
        _print_json({"keyring": keyring.directory, "keys": rows})
        return 0
    print(f"keyring {keyring.directory}")
    for row in rows:
        flags = ["current"] if row["current"] else []
        flags += [] if row["available"] else ["MISSING"]
        print(f"  {row['id']}  {row['versions']} version(s) sealed  {' '.join(flags)}".rstrip())
    return 0


async def cmd_keys_rotate(args: argparse.Namespace) -> int:
    if os.environ.get("PSP_KEY"):
        raise UsageError("PSP_KEY is set and takes precedence; rotate by giving a new PSP_KEY (old keys stay in the keyring)")
    key_id, _ = await trio.to_thread.run_sync(Keyring().create)
    print(f"new current key {key_id}; older versions still open with their keys (psp keys rewrap re-seals them)")
    return 0


async def cmd_keys_rewrap(args: argparse.Namespace) -> int:
    done = await _sessions(args).rewrap(args.ref)
    key_id = (await trio.to_thread.run_sync(Keyring().current))[0]
    print(f"re-sealed {len(done)} version(s) of {len({info.id for info, _ in done})} session(s) with key {key_id}")
    return 0


async def cmd_daemon(args: argparse.Namespace) -> int:
    import logging

    from .daemon import run_daemon

    logging.basicConfig(level=logging.INFO, format="psp daemon: %(levelname)s: %(message)s", stream=sys.stderr)
    logging.getLogger("psp_cdp.daemon.http").setLevel(logging.WARNING)
    return await run_daemon(
        args.store,
        args.socket,
        cache_mib=args.cache_mib,
        tcp=args.tcp,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        api_keys=args.api_keys,
        max_connections=args.max_connections,
        rate_limit=args.rate_limit,
        request_timeout=args.request_timeout,
    )


async def cmd_keys_api_create(args: argparse.Namespace) -> int:
    from .daemon import create_key

    key_id, token = await trio.to_thread.run_sync(
        lambda: create_key(args.api_keys, name=args.name, tenant=args.tenant, scopes=args.scope)
    )
    print(f"API key {key_id} for tenant {args.tenant} ({', '.join(args.scope)}); the token, shown this once:")
    print(token)
    return 0


async def cmd_keys_api_list(args: argparse.Namespace) -> int:
    from .daemon import list_keys

    keys = [k.as_dict() for k in await trio.to_thread.run_sync(list_keys, args.api_keys)]
    if args.json:
        _print_json(keys)
        return 0
    if not keys:
        print("no API keys")
    for key in keys:
        print(f"{key['id']}  {key['name']}  tenant {key['tenant']}  {','.join(key['scopes'])}  created {_when(key['created_at'])}")
    return 0


async def cmd_keys_api_revoke(args: argparse.Namespace) -> int:
    from .daemon import revoke_key

    key = await trio.to_thread.run_sync(revoke_key, args.api_keys, args.id)
    print(f"revoked API key {key.id} ({key.name}); a running daemon refuses it from its next request")
    return 0


# -- parser -----------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="psp",
        description="Capture, store and restore complete Chromium sessions over the DevTools Protocol.",
    )
    parser.add_argument("--version", action="version", version=f"psp {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    names = ", ".join(c.name for c in components())
    store_help = "a directory or a redis://, rediss://, redis+cluster:// URL (default: $PSP_STORE, else the XDG data dir)"

    def command(name: str, handler: Callable[[argparse.Namespace], Any], help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(handler=handler)
        p.add_argument("--store", metavar="STORE", help=store_help)
        return p

    def selection(p: argparse.ArgumentParser) -> None:
        p.add_argument("--only", metavar="C,..", help=f"only these components ({names})")
        p.add_argument("--skip", metavar="C,..", help="all components but these")

    def versioning(p: argparse.ArgumentParser) -> None:
        p.add_argument("--keep", type=int, metavar="N", help="keep the last N versions of the session (kept from now on)")
        p.add_argument("--ttl", metavar="DURATION", help="forget the session this long after its last write (30m, 12h, 7d)")
        p.add_argument("--full-every", type=int, metavar="N", help=f"a full snapshot every N versions (default {FULL_EVERY})")
        p.add_argument("--cipher", choices=CIPHERS, help="seal new versions with this (default: $PSP_CIPHER or aes-256-gcm)")

    def no_daemon(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--no-daemon", action="store_true",
            help="work in this process even if a daemon serving the same store answers on its socket ($PSP_NO_DAEMON=1 too)",
        )

    cdp_help = "browser endpoint: http://host:port, ws:// URL, port, DevToolsActivePort file or profile directory"

    p = command("capture", cmd_capture, "capture a browser context into a session")
    p.add_argument("--cdp", required=True, metavar="URL", help=cdp_help)
    p.add_argument("--name", required=True, help="session name (an existing session gets a new version)")
    p.add_argument("--context", metavar="ID", help="browser context id (default: the default context)")
    selection(p)
    p.add_argument("--tag", action="append", metavar="K=V", help="tag the session (repeatable)")
    p.add_argument("--description", help="a description of the session")
    p.add_argument("--origin", action="append", metavar="ORIGIN", help="also read the storage of this origin (repeatable)")
    p.add_argument("--dom-snapshot", action="store_true", help="also keep a full DOM snapshot of each tab, for inspection")
    p.add_argument(
        "--auth-headers", action="store_true",
        help="also watch each tab's requests for a few seconds and keep the tokens of their Authorization headers",
    )
    versioning(p)
    no_daemon(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    p = command("restore", cmd_restore, "restore a session into a browser")
    p.add_argument("ref", metavar="NAME[@VERSION]", help="session name or id, @N for version N (default: the latest)")
    p.add_argument("--cdp", required=True, metavar="URL", help=cdp_help)
    p.add_argument("--context", metavar="default|new|ID", help="target context (default: the default context)")
    selection(p)
    p.add_argument("--clean", action="store_true", help="empty the whole context first")
    p.add_argument(
        "--service-workers", action="store_true", help="register the captured service workers again (fetches their scripts)"
    )
    no_daemon(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    p = command("ls", cmd_ls, "list sessions")
    p.add_argument("--tag", action="append", metavar="K=V", help="only sessions with this tag (repeatable)")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = command("show", cmd_show, "describe a session (never prints cookie or storage values)")
    p.add_argument("ref", metavar="NAME[@VERSION]", help="session name or id, @N for version N")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = command("status", cmd_status, "whether a session is still logged in: exit 0 valid, 1 expired or expiring, 2 error")
    p.add_argument("ref", metavar="NAME[@VERSION]", help="session name or id, @N for version N")
    p.add_argument("--within", metavar="DURATION", help="count as expiring if it expires within this (90s, 30m, 2h, 1d, 1h30m)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(error_status=2)

    credentials = sub.add_parser(
        "credentials",
        help="keep a username and password with a session, always encrypted (opt-in)",
        description="Keep a username and password with a session, sealed with AES-256-GCM by a key of the keyring "
        "($PSP_KEY, else $PSP_KEYRING, else $XDG_CONFIG_HOME/psp/keys).",
    )
    actions = credentials.add_subparsers(dest="action", required=True, metavar="ACTION")

    def credentials_action(name: str, handler: Callable[[argparse.Namespace], Any], help: str) -> argparse.ArgumentParser:
        p = actions.add_parser(name, help=help, description=help)
        p.set_defaults(handler=handler)
        p.add_argument("ref", metavar="NAME", help="session name or id")
        p.add_argument("--store", metavar="STORE", help=store_help)
        return p

    p = credentials_action(
        "set", cmd_credentials_set, "seal a username and password into a session (password from $PSP_PASSWORD, stdin or a prompt)"
    )
    p.add_argument("--origin", required=True, metavar="URL", help="the site they log in to")
    p.add_argument("--username", required=True, metavar="USER")
    p = credentials_action("show", cmd_credentials_show, "print the origin and username (the password only with --reveal)")
    p.add_argument("--reveal", action="store_true", help="also print the password")
    p.add_argument("--json", action="store_true", help="print JSON")
    credentials_action("clear", cmd_credentials_clear, "remove a session's credentials")

    p = command("watch", cmd_watch, "keep a session up to date with a browser: a new version whenever its state changes")
    p.add_argument("--cdp", required=True, metavar="URL", help=cdp_help)
    p.add_argument("--name", required=True, help="session name")
    p.add_argument("--context", metavar="ID", help="browser context id (default: the default context)")
    p.add_argument("--cookie-interval", type=float, default=2.0, metavar="S", help="read cookies every S seconds (default 2)")
    p.add_argument("--debounce", type=float, default=0.5, metavar="S", help="write once changes pause for S seconds (default 0.5)")
    versioning(p)

    p = command("record", cmd_record, "record input, navigations and network traffic into a new version of a session")
    p.add_argument("--cdp", required=True, metavar="URL", help=cdp_help)
    p.add_argument("--name", required=True, help="session name (the recording starts from its state captured now)")
    p.add_argument("--context", metavar="ID", help="browser context id (default: the default context)")
    p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds (default: at Ctrl-C or SIGTERM)")
    p.add_argument("--no-network", action="store_true", help="do not record network exchanges")
    p.add_argument("--dom", action="store_true", help="also record DOM mutations, as a timeline of page changes")
    p.add_argument("-v", "--verbose", action="store_true", help="print each event as it is recorded")
    versioning(p)

    p = command("replay", cmd_replay, "restore a recording's starting state and replay its events; exit 1 if a step failed "
                                      "(with --strict, also if it ended otherwise than recorded)")
    p.add_argument("ref", metavar="NAME[@VERSION]", help="session name or id (default: its newest recording)")
    p.add_argument("--cdp", required=True, metavar="URL", help=cdp_help)
    p.add_argument("--context", metavar="default|new|ID", help="target context (default: the default context)")
    pace = p.add_mutually_exclusive_group()
    pace.add_argument("--speed", type=float, metavar="F", help="play F times as fast as recorded")
    pace.add_argument("--realtime", action="store_true", help="play at the recorded pace (the default)")
    pace.add_argument("--max", action="store_true", help="play each event as soon as the one before is done")
    p.add_argument("--network", choices=("mock", "live"), default="mock",
                   help="mock: answer every request from the recording (the default); live: use the network")
    p.add_argument("--timeout", type=float, default=10.0, metavar="S", help="wait this long for an element or a page (default 10)")
    p.add_argument("--ignore-field", action="append", metavar="NAME",
                   help="with the network mocked, also match requests whose query, JSON or form body differs only in "
                        "this field (timestamps, nonces; repeatable); such answers are listed")
    p.add_argument("--strict", action="store_true", help="exit 1 when the replay ended otherwise than recorded")
    p.add_argument("--json", action="store_true", help="print the report as JSON")

    p = command("log", cmd_log, "list the versions of a session")
    p.add_argument("ref", metavar="NAME", help="session name or id")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = command("diff", cmd_diff, "what changed between two versions (names of items, never values)")
    p.add_argument("a", metavar="NAME@A", help="a session version (NAME: its latest)")
    p.add_argument("b", metavar="NAME@B", help="another session version")
    p.add_argument("--json", action="store_true", help="print JSON")

    keys = sub.add_parser(
        "keys",
        help="the keys that seal stored versions",
        description="Keys live in the keyring ($PSP_KEY, else $PSP_KEYRING, else $XDG_CONFIG_HOME/psp/keys), "
        "one 0600 file per key id; new versions are sealed with the current key.",
    )
    key_actions = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, handler, help in (
        ("list", cmd_keys_list, "list the keys and how many stored versions each one seals"),
        ("rotate", cmd_keys_rotate, "make a new key the current one (older versions still open with theirs)"),
        ("rewrap", cmd_keys_rewrap, "re-seal stored versions with the current key and cipher"),
    ):
        p = key_actions.add_parser(name, help=help, description=help)
        p.set_defaults(handler=handler)
        p.add_argument("--store", metavar="STORE", help=store_help)
        if name == "rewrap":
            p.add_argument("ref", nargs="?", metavar="NAME", help="only this session (default: every session)")
            p.add_argument("--cipher", choices=CIPHERS[:2], help="seal with this cipher (default: $PSP_CIPHER or aes-256-gcm)")
        if name == "list":
            p.add_argument("--json", action="store_true", help="print JSON")
    api_keys_help = "API keys file (default: api-keys.json beside the keyring)"
    p = key_actions.add_parser("api-create", help="create an API key for the daemon's TCP listener; the token is shown once")
    p.set_defaults(handler=cmd_keys_api_create)
    p.add_argument("--name", required=True, help="what the key is for")
    p.add_argument("--tenant", required=True, help="the tenant whose sessions the key sees")
    p.add_argument("--scope", action="append", required=True, choices=SCOPES,
                   help="what the key may do (repeatable): " + ", ".join(SCOPES))
    p.add_argument("--api-keys", metavar="FILE", help=api_keys_help)
    p = key_actions.add_parser("api-list", help="list API keys (never their tokens)")
    p.set_defaults(handler=cmd_keys_api_list)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--api-keys", metavar="FILE", help=api_keys_help)
    p = key_actions.add_parser("api-revoke", help="revoke an API key; a running daemon refuses it from its next request")
    p.set_defaults(handler=cmd_keys_api_revoke)
    p.add_argument("id", metavar="ID", help="the key's id (or the token)")
    p.add_argument("--api-keys", metavar="FILE", help=api_keys_help)

    p = command("daemon", cmd_daemon, "serve the control API (HTTP/1.1 and JSON) on a Unix socket until SIGTERM")
    p.add_argument(
        "--socket", metavar="PATH",
        help="socket path (default: $PSP_SOCKET, else $XDG_RUNTIME_DIR/psp/psp.sock, else /run/psp/psp.sock); "
        "ignored when systemd passes a socket (LISTEN_FDS)",
    )
    p.add_argument(
        "--cache-mib", metavar="MIB", type=float, default=256,
        help="memory for decoded versions kept for repeated restores (default: 256; 0: none)",
    )
    p.add_argument(
        "--tcp", metavar="HOST:PORT",
        help="also serve the API over TCP, TLS 1.3 only, to clients with an API key "
        "(needs --tls-cert and --tls-key; port 0: any free port)",
    )
    p.add_argument("--tls-cert", metavar="FILE", help="PEM certificate (chain) for the TCP listener")
    p.add_argument("--tls-key", metavar="FILE", help="PEM private key of --tls-cert")
    p.add_argument("--api-keys", metavar="FILE", help=api_keys_help)
    p.add_argument("--max-connections", metavar="N", type=int, default=4096,
                   help="connections served at once; more are refused with 503 (default: 4096)")
    p.add_argument("--rate-limit", metavar="N", type=int, default=100,
                   help="requests a second each API key may make over TCP; more are answered 429 (default: 100; 0: no limit)")
    p.add_argument("--request-timeout", metavar="SECONDS", type=float, default=30,
                   help="a connection that sends no request's head in this time is closed, and a body that takes "
                        "longer is answered 408 (default: 30)")

    p = command("rm", cmd_rm, "remove a session")
    p.add_argument("ref", metavar="NAME", help="session name or id")

    p = command("export", cmd_export, "write a session to a file")
    p.add_argument("ref", metavar="NAME[@VERSION]", help="session name or id, @N for version N")
    p.add_argument("--format", choices=_FORMATS, default="psp",
                   help="recorder: the recording's input as a Chrome Recorder user flow; har: its network exchanges as HAR 1.2; "
                        "playwright-python, playwright-test (TypeScript), selenium-python: a script that restores the recording's "
                        "starting state, replays it and checks its end state (all from the newest version with a recording, "
                        "unless @N is given)")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="output file, - for stdout")

    p = command("import", cmd_import, "store a session from a file")
    p.add_argument("file", metavar="FILE",
                   help="a psp snapshot, PSP JSON, Playwright storageState, Chrome Recorder user flow or HAR file, - for stdin")
    p.add_argument("--name", required=True, help="session name")
    p.add_argument("--format", choices=_FORMATS,
                   help="default: detected; recorder and har replace the events or the exchanges of the latest version's recording")
    p.add_argument("--tag", action="append", metavar="K=V", help="tag the session (repeatable)")
    p.add_argument("--description", help="a description of the session")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    error_status = getattr(args, "error_status", 1)
    try:
        return trio.run(args.handler, args)
    except BaseException as exc:
        errors = leaf_errors(exc) if isinstance(exc, BaseExceptionGroup) else [exc]
        if any(isinstance(e, KeyboardInterrupt) for e in errors):
            print("psp: interrupted", file=sys.stderr)
            return 130
        if errors and all(isinstance(e, BrokenPipeError) for e in errors):
            # the reader went away (psp show NAME | head): not an error of ours
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        if isinstance(exc, SystemExit):
            raise
        mine = [e for e in errors if isinstance(e, PspError)]
        if mine and len(mine) == len(errors):
            print(f"psp: error: {mine[0]}", file=sys.stderr)
            return error_status
        # Not an error of ours: one line, the traceback only when asked for.
        if os.environ.get("PSP_DEBUG") == "1":
            raise
        print(f"psp: error: {_unexpected(next((e for e in errors if not isinstance(e, PspError)), exc))}", file=sys.stderr)
        return 1


def _unexpected(error: BaseException) -> str:
    """An error psp_cdp did not expect, in one line that carries nothing of the data that caused it."""
    if isinstance(error, RecursionError):
        return "the input is nested too deeply to be read"
    if isinstance(error, MemoryError):
        return "out of memory"
    if isinstance(error, OSError) and error.strerror:
        return f"{error.strerror}" + (f": {error.filename}" if isinstance(error.filename, str) else "")
    return f"unexpected {type(error).__name__}; PSP_DEBUG=1 shows where (please report it)"


if __name__ == "__main__":
    sys.exit(main())
