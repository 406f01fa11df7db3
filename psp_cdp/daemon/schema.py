"""JSON Schemas of the control API, and the small validator that enforces them.

The schemas here are the single source for both what a request body must look like
(:func:`validate`) and what the OpenAPI document says (:mod:`psp_cdp.daemon.openapi`),
so the two cannot drift apart. The validator understands exactly the JSON Schema
keywords listed in :data:`KEYWORDS`; a schema using any other keyword is refused when
this module is imported, so the document never promises a check that is not made.
"""

from __future__ import annotations

import functools
import re
from typing import Any

__all__ = ["SCHEMAS", "SchemaError", "validate", "ref", "KEYWORDS"]

#: Keywords :func:`validate` enforces, plus annotations it may ignore.
KEYWORDS = frozenset(
    {
        "type", "properties", "required", "additionalProperties", "propertyNames", "items", "minItems", "maxItems", "maxProperties",
        "minLength", "maxLength", "pattern", "minimum", "maximum", "exclusiveMinimum", "enum",
        "$ref",
        # annotations
        "description", "title", "examples", "default", "format", "readOnly",
    }
)

_REF_PREFIX = "#/components/schemas/"
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def ref(name: str) -> dict[str, str]:
    """A ``$ref`` to one of :data:`SCHEMAS`."""
    return {"$ref": _REF_PREFIX + name}


class SchemaError(Exception):
    """A value does not match its schema; ``str()`` says where and why."""


_NAME = {
    "type": "string",
    "pattern": r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,127}$",
    "description": "1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit",
}
_TAGS = {
    "type": "object",
    "propertyNames": {"type": "string", "pattern": "^[^=]{1,128}$", "description": "1 to 128 characters, no '='"},
    "additionalProperties": {"type": "string", "maxLength": 1024},
    "maxProperties": 64,
    "description": "tags as KEY: VALUE strings",
}
_COMPONENTS = {
    "type": "array",
    "items": {"type": "string", "minLength": 1, "maxLength": 64},
    "maxItems": 64,
    "description": "component names (see GET /v1/version capabilities.components)",
}
_BROWSER_ID = {"type": "string", "minLength": 1, "maxLength": 64, "description": "a browser id from POST /v1/browsers"}

SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": {
        "type": "object",
        "properties": {
            "message": {"type": "string"},
            "error": {"type": "string", "description": "the class of psp_cdp.errors this is (SessionNotFoundError, ...)"},
        },
        "required": ["message"],
    },
    "Health": {
        "type": "object",
        "properties": {"status": {"type": "string", "enum": ["ok"]}},
        "required": ["status"],
    },
    "Version": {
        "type": "object",
        "properties": {
            "protocol": {"type": "string", "description": "semantic version of this API"},
            "psp_cdp": {"type": "string", "description": "version of the psp_cdp package"},
            "store": {
                "type": "string",
                "description": "the store this daemon serves: a directory's absolute path, or the URL without its "
                "password (not shown to a tenant's API key over TCP)",
            },
            "capabilities": {
                "type": "object",
                "properties": {
                    "components": {"type": "array", "items": {"type": "string"}},
                    "stores": {"type": "array", "items": {"type": "string"}},
                    "encryption": {"type": "array", "items": {"type": "string"}},
                    "recording": {"type": "boolean", "description": "POST /v1/recordings is served"},
                    "replay": {"type": "boolean", "description": "POST /v1/replays is served"},
                    "events": {"type": "boolean"},
                    "event_deltas": {"type": "boolean", "description": "/v1/events?delta=1 is understood"},
                    "shared_events": {
                        "type": "boolean",
                        "description": "/v1/events also carries versions written by other daemons and psp commands "
                        "sharing this daemon's store (a Redis store)",
                    },
                    "watch": {"type": "boolean", "description": "POST /v1/sessions/{id}/watch is served"},
                },
                "required": ["components", "stores", "encryption", "recording", "events"],
            },
        },
        "required": ["protocol", "psp_cdp", "capabilities"],
    },
    "Session": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "description": {"type": "string"},
            "tags": {"type": "object", "additionalProperties": {"type": "string"}},
            "created_at": {"type": "number"},
            "updated_at": {"type": "number"},
            "keep": {"type": ["integer", "null"]},
            "full_every": {"type": ["integer", "null"]},
            "ttl": {"type": ["number", "null"]},
            "head": {"type": "integer", "description": "latest version; 0 while the session has none"},
            "size": {"type": "integer", "description": "bytes stored for the latest version"},
            "components": {"type": "object", "additionalProperties": {"type": "integer"}},
            "origins": {"type": "array", "items": {"type": "string"}},
            "captured_at": {"type": ["number", "null"]},
        },
        "required": ["id", "name", "description", "tags", "created_at", "updated_at", "head"],
    },
    "SessionVersion": {
        "type": "object",
        "properties": {
            "version": {"type": "integer"},
            "kind": {"type": "string", "enum": ["full", "delta"]},
            "parent": {"type": ["integer", "null"]},
            "base": {"type": "integer"},
            "created_at": {"type": "number"},
            "stored_bytes": {"type": "integer", "description": "every byte the store holds for this version"},
            "blob_bytes": {"type": "integer"},
            "raw_bytes": {"type": "integer"},
            "cipher": {"type": "string"},
            "key_id": {"type": ["string", "null"]},
            "components": {"type": "object", "additionalProperties": {"type": "integer"}},
            "origins": {"type": "array", "items": {"type": "string"}},
            "captured_at": {"type": ["number", "null"]},
            "changes": {"type": "object"},
        },
        "required": ["version", "kind", "stored_bytes", "created_at"],
    },
    "NewSession": {
        "type": "object",
        "properties": {
            "name": _NAME,
            "description": {"type": "string", "maxLength": 4096},
            "tags": _TAGS,
        },
        "required": ["name"],
        "additionalProperties": False,
    },
    "SessionPatch": {
        "type": "object",
        "description": "fields to change; tags, when given, replace all the session's tags; "
        "null for keep, ttl or full_every removes that policy",
        "properties": {
            "description": {"type": "string", "maxLength": 4096},
            "tags": _TAGS,
            "keep": {"type": ["integer", "null"], "minimum": 1, "maximum": 1_000_000, "description": "keep the last N versions"},
            "ttl": {
                "type": ["number", "null"],
                "minimum": 1,
                "maximum": 3.2e9,
                "description": "forget the session this many seconds after its last write",
            },
            "full_every": {"type": ["integer", "null"], "minimum": 1, "maximum": 1_000_000, "description": "a full version every N versions"},
        },
        "additionalProperties": False,
    },
    "Attach": {
        "type": "object",
        "properties": {
            "cdp": {
                "type": "string",
                "minLength": 1,
                "maxLength": 4096,
                "description": "browser endpoint: http://host:port, ws:// URL, port, DevToolsActivePort file or profile directory",
            },
        },
        "required": ["cdp"],
        "additionalProperties": False,
    },
    "Browser": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "cdp": {"type": "string", "description": "the endpoint as given"},
            "browser": {"type": "string", "description": "the browser's product string"},
            "attached": {"type": "boolean", "description": "false while the connection to the browser is lost"},
            "reason": {"type": ["string", "null"], "description": "why it is not attached now (null while it is)"},
            "last_error": {
                "type": ["string", "null"],
                "description": "the last error seen: how the connection was lost, or why the last attempt to attach again failed",
            },
            "reconnects": {"type": "integer", "description": "times it was attached again after a loss"},
            "attempts": {"type": "integer", "description": "failed attempts to attach again since the connection was lost"},
            "attached_at": {"type": "number", "description": "when it was last attached (seconds since the epoch)"},
            "retry_at": {"type": ["number", "null"], "description": "when the next attempt to attach again is due"},
        },
        "required": ["id", "cdp", "browser", "attached"],
    },
    "Capture": {
        "type": "object",
        "properties": {
            "browser": _BROWSER_ID,
            "context": {"type": "string", "minLength": 1, "maxLength": 256, "description": "browser context id (default: the default context)"},
            "only": _COMPONENTS,
            "skip": _COMPONENTS,
        },
        "required": ["browser"],
        "additionalProperties": False,
    },
    "Captured": {
        "type": "object",
        "properties": {
            "version": {"type": "integer", "description": "the version written"},
            "kind": {"type": "string", "enum": ["full", "delta"]},
            "stored_bytes": {"type": "integer"},
            "record": ref("SessionVersion"),
            "session": ref("Session"),
            "origins_covered": {"type": "array", "items": {"type": "string"}},
            "uncovered": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"what": {"type": "string"}, "reason": {"type": "string"}},
                },
            },
        },
        "required": ["version", "kind", "stored_bytes", "record", "session"],
    },
    "Restore": {
        "type": "object",
        "properties": {
            "browser": _BROWSER_ID,
            "version": {"type": "integer", "minimum": 1, "description": "version to restore (default: the latest)"},
            "context": {
                "type": "string",
                "minLength": 1,
                "maxLength": 256,
                "description": "target context: default, new (created) or a context id (default: the default context)",
            },
            "only": _COMPONENTS,
            "skip": _COMPONENTS,
            "clean": {"type": "boolean", "description": "empty the whole context first"},
        },
        "required": ["browser"],
        "additionalProperties": False,
    },
    "Restored": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "version": {"type": "integer", "description": "the version restored"},
            "restored": {"type": "object", "additionalProperties": {"type": "integer"}, "description": "items per component"},
            "notes": {"type": "array", "items": {"type": "string"}},
            "missing": {"type": "array", "items": {"type": "string"},
                        "description": "the notes that name what the state held and could not be restored (empty: the "
                                       "restore is whole)"},
            "context": {"type": ["string", "null"], "description": "the context restored into (null: the default)"},
        },
        "required": ["id", "name", "version", "restored", "notes", "missing", "context"],
    },
    "Event": {
        "type": "object",
        "description": "a message of the /v1/events WebSocket",
        "properties": {
            "type": {
                "type": "string",
                "enum": [
                    "created", "updated", "deleted", "version", "recording.started", "recording.event", "recording.saved",
                    "recording.failed", "replay.step", "replay.finished",
                ],
            },
            "session": ref("Session"),
            "version": ref("SessionVersion"),
            "delta": ref("Delta"),
            "recording": {"type": "string", "description": "recording.*: the recording's id"},
            "details": ref("Recording"),
            "event": ref("RecordedEvent"),
            "replay": {"type": "string", "description": "replay.*: the replay's id"},
            "step": ref("ReplayStep"),
            "report": ref("Replay"),
        },
        "required": ["type", "session"],
    },
    "RecordedEvent": {
        "type": "object",
        "description": "one recorded event (recording.event), as docs/recording.md describes it",
        "properties": {
            "type": {
                "type": "string",
                "description": "click, dblclick, keydown, keyup, input, change, focus, scroll, wheel, navigate, tab_open, "
                "tab_close or mutation",
            },
            "timestamp": {"type": "number", "description": "milliseconds since the recording started"},
            "tab": {"type": "integer", "description": "the tab, by index: the starting state's tabs first, then each tab opened"},
            "frame": {"type": "array", "items": {"type": "integer"}, "description": "the frame's path (empty: the main frame)"},
            "target": {"type": "string", "description": "the element's first selector, or empty"},
            "selectors": {"type": "array", "items": {"type": "string"}, "description": "the element's selectors, most robust first"},
            "data": {"type": "object", "description": "what happened: its fields depend on the type"},
        },
        "required": ["type", "timestamp", "tab", "frame", "target", "data"],
    },
    "Delta": {
        "type": "object",
        "description": "what a version changed against the version before it (/v1/events?delta=1); names, never values",
        "properties": {
            "from": {"type": ["integer", "null"], "description": "the version compared against; null for a first version"},
            "changes": {
                "type": "object",
                "description": "per component: items added, changed and removed",
                "additionalProperties": {
                    "type": "object",
                    "properties": {"added": {"type": "integer"}, "changed": {"type": "integer"}, "removed": {"type": "integer"}},
                },
            },
            "items": {
                "type": ["object", "null"],
                "description": "per component: the names of the items added, changed and removed (null if unknown)",
                "additionalProperties": {
                    "type": "object",
                    "properties": {
                        "added": {"type": "array", "items": {"type": "string"}},
                        "changed": {"type": "array", "items": {"type": "string"}},
                        "removed": {"type": "array", "items": {"type": "string"}},
                    },
                },
            },
            "truncated": {"type": "boolean", "description": "some names were left out (over 1000 in one list)"},
            "error": {"type": "string", "description": "why the item names could not be worked out"},
        },
        "required": ["from", "changes", "items", "truncated"],
    },
    "NewWatch": {
        "type": "object",
        "properties": {
            "browser": _BROWSER_ID,
            "context": {"type": "string", "minLength": 1, "maxLength": 256, "description": "browser context id (default: the default context)"},
            "cookie_interval": {
                "type": "number", "minimum": 0.05, "maximum": 3600,
                "description": "seconds between cookie polls (cookies have no change events; default 2)",
            },
            "debounce": {
                "type": "number", "minimum": 0, "maximum": 3600,
                "description": "seconds of quiet after a change before it is captured (default 0.5)",
            },
            "max_delay": {
                "type": "number", "minimum": 0.05, "maximum": 3600,
                "description": "capture at most this many seconds after the first change of a batch, quiet or not (default 5)",
            },
        },
        "required": ["browser"],
        "additionalProperties": False,
    },
    "Watch": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "watch": {"type": "string", "description": "the watch's id (in the answer of POST /v1/sessions/{id}/watch)"},
            "session": {
                "type": "object",
                "properties": {"id": {"type": "string"}, "name": {"type": "string"}},
                "required": ["id", "name"],
            },
            "browser": {"type": "string", "description": "the browser id"},
            "context": {"type": ["string", "null"]},
            "cookie_interval": {"type": "number"},
            "debounce": {"type": "number"},
            "max_delay": {"type": "number"},
            "created_at": {"type": "number"},
            "state": {"type": "string", "enum": ["starting", "running", "stopping", "stopped", "failed"]},
            "versions": {"type": "integer", "description": "versions written by this watch"},
            "last_version": {"type": ["integer", "null"], "description": "the last version it wrote"},
            "changed_at": {"type": ["number", "null"], "description": "when it last wrote a version"},
            "error": {"type": ["string", "null"], "description": "why it failed"},
        },
        "required": ["id", "session", "browser", "state", "versions", "last_version"],
    },
    "NewRecording": {
        "type": "object",
        "properties": {
            "browser": _BROWSER_ID,
            "session": {
                **_NAME,
                "description": "the session id or name the recording is saved into (as its next version); a name no "
                "session has makes a new session: " + _NAME["description"],
            },
            "context": {"type": "string", "minLength": 1, "maxLength": 256, "description": "browser context id (default: the default context)"},
            "network": {"type": "boolean", "description": "record network exchanges (default true)"},
            "dom": {"type": "boolean", "description": "also record DOM mutations (default false)"},
            "duration": {
                "type": "number", "exclusiveMinimum": 0, "maximum": 604800,
                "description": "stop and save by itself this many seconds after it started (default: when asked)",
            },
        },
        "required": ["browser", "session"],
        "additionalProperties": False,
    },
    "Recording": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "session": {
                "type": "object",
                "properties": {"id": {"type": "string"}, "name": {"type": "string"}},
                "required": ["id", "name"],
            },
            "browser": {"type": "string", "description": "the browser id"},
            "context": {"type": ["string", "null"], "description": "the browser context asked for (null: the default)"},
            "network": {"type": "boolean"},
            "dom": {"type": "boolean"},
            "duration": {"type": ["number", "null"], "description": "seconds after which it stops by itself"},
            "state": {"type": "string", "enum": ["recording", "saved", "failed"]},
            "started_at": {"type": ["number", "null"], "description": "when it started recording (seconds since the epoch)"},
            "stopped_at": {"type": ["number", "null"], "description": "when it was asked to stop"},
            "stop_reason": {
                "type": ["string", "null"],
                "description": "asked, duration, browser lost, browser detached, session deleted or daemon stopping",
            },
            "events": {"type": "integer", "description": "input, navigation and tab events recorded (so far)"},
            "exchanges": {"type": "integer", "description": "network exchanges recorded (so far)"},
            "mutations": {"type": "integer", "description": "DOM mutation batches recorded (so far)"},
            "version": {"type": ["integer", "null"], "description": "once saved: the version written"},
            "stored_bytes": {"type": ["integer", "null"], "description": "once saved: every byte the store holds for it"},
            "duration_ms": {"type": ["integer", "null"], "description": "once saved: how long it recorded, in milliseconds"},
            "error": {"type": ["string", "null"], "description": "why it failed"},
        },
        "required": ["id", "session", "browser", "state", "started_at", "events", "exchanges", "mutations", "version", "error"],
    },
    "NewReplay": {
        "type": "object",
        "properties": {
            "browser": _BROWSER_ID,
            "session": {
                "type": "string",
                "pattern": r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,127}(@[0-9]{1,9})?$",
                "description": "NAME (its newest version holding a recording) or NAME@VERSION; a session id in place of NAME",
            },
            "context": {
                "type": "string",
                "minLength": 1,
                "maxLength": 256,
                "description": "target context: default, new (created) or a context id (default: the default context)",
            },
            "speed": {
                "type": "number", "exclusiveMinimum": 0, "maximum": 1000,
                "description": "play this many times as fast as recorded (default 1: the recorded pace)",
            },
            "max": {"type": "boolean", "description": "each event as soon as the one before is done (not with speed)"},
            "network": {
                "type": "string", "enum": ["mock", "live"],
                "description": "mock (the default): answer every request from the recording; live: use the network",
            },
            "timeout": {
                "type": "number", "exclusiveMinimum": 0, "maximum": 3600,
                "description": "seconds to wait for an element, a navigation or a tab (default 10)",
            },
            "ignore_fields": {
                "type": "array", "maxItems": 64,
                "items": {"type": "string", "minLength": 1, "maxLength": 128},
                "description": "with the network mocked, also match requests whose query, JSON or form body differs "
                               "only in these fields (timestamps, nonces); such answers are listed in fallbacks",
            },
            "strict": {
                "type": "boolean",
                "description": "count the replay as failed when it ended otherwise than recorded (see outcome)",
            },
        },
        "required": ["browser", "session"],
        "additionalProperties": False,
    },
    "ReplayStep": {
        "type": "object",
        "description": "one event of the recording, replayed",
        "properties": {
            "index": {"type": "integer", "description": "the event's index in the recording"},
            "type": {"type": "string"},
            "target": {"type": "string"},
            "tab": {"type": "integer"},
            "scheduled": {"type": "number", "description": "when it was due, milliseconds since the replay's start"},
            "dispatched": {"type": "number", "description": "when it was dispatched"},
            "outcome": {"type": "string", "enum": ["done", "retried", "skipped", "failed"]},
            "reason": {"type": "string", "description": "why it was retried, skipped or failed"},
        },
        "required": ["index", "type", "target", "tab", "scheduled", "dispatched", "outcome", "reason"],
    },
    "Replay": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "session": {
                "type": "object",
                "properties": {"id": {"type": "string"}, "name": {"type": "string"}},
                "required": ["id", "name"],
            },
            "version": {"type": "integer", "description": "the version replayed"},
            "browser": {"type": "string", "description": "the browser id"},
            "context": {"type": ["string", "null"], "description": "the context asked for"},
            "speed": {"type": ["number", "null"], "description": "null: as fast as it goes (max)"},
            "timeout": {"type": "number"},
            "state": {
                "type": "string", "enum": ["running", "finished", "failed"],
                "description": "finished: every step was tried (see failed); failed: the replay could not go on (see error)",
            },
            "strict": {"type": "boolean", "description": "whether ending otherwise than recorded counts as failed"},
            "failed": {
                "type": "boolean",
                "description": "a step failed, or the replay could not go on (strict: or it ended otherwise than recorded)",
            },
            "error": {"type": ["string", "null"], "description": "why the replay could not go on"},
            "started_at": {"type": "number"},
            "finished_at": {"type": ["number", "null"]},
            "steps": {"type": "array", "items": ref("ReplayStep")},
            "counts": {
                "type": "object",
                "properties": {"done": {"type": "integer"}, "retried": {"type": "integer"}, "skipped": {"type": "integer"},
                               "failed": {"type": "integer"}},
                "required": ["done", "retried", "skipped", "failed"],
            },
            "network": {"type": "string", "enum": ["mock", "live"]},
            "answered": {"type": "integer", "description": "requests answered from the recording (network mock)"},
            "unmatched": {
                "type": "array",
                "description": "requests the recording had no answer for (answered 404)",
                "items": {
                    "type": "object",
                    "properties": {"method": {"type": "string"}, "url": {"type": "string"}},
                    "required": ["method", "url"],
                },
            },
            "fallbacks": {
                "type": "array",
                "description": "requests answered by a rule after the exact match (network mock), with how",
                "items": {
                    "type": "object",
                    "properties": {"method": {"type": "string"}, "url": {"type": "string"}, "how": {"type": "string"}},
                    "required": ["method", "url", "how"],
                },
            },
            "outcome": {
                "type": "object",
                "description": "the end state against the recorded one",
                "properties": {
                    "compared": {"type": "boolean", "description": "the recording has an end state to compare with"},
                    "as_recorded": {"type": "boolean", "description": "compared, and nothing differed"},
                    "differences": {"type": "array", "items": {"type": "string"}, "description": "one line each"},
                },
                "required": ["compared", "as_recorded", "differences"],
            },
            "restore": {
                "type": ["object", "null"],
                "description": "what restoring the starting state restored (null until it is restored)",
                "properties": {
                    "restored": {"type": "object", "additionalProperties": {"type": "integer"}},
                    "notes": {"type": "array", "items": {"type": "string"}},
                    "missing": {"type": "array", "items": {"type": "string"}},
                    "context": {"type": ["string", "null"], "description": "the context replayed into (null: the default)"},
                },
            },
        },
        "required": ["id", "session", "version", "browser", "state", "strict", "failed", "steps", "counts", "network",
                     "answered", "unmatched", "fallbacks", "outcome", "restore"],
    },
    "Stats": {
        "type": "object",
        "properties": {
            "uptime": {"type": "number", "description": "seconds since the daemon started"},
            "cache": {
                "type": "object",
                "description": "the hot versions cache: decoded versions by (session, version), least recently used first out",
                "properties": {
                    "entries": {"type": "integer"},
                    "bytes": {"type": "integer", "description": "what the entries hold (serialised sizes)"},
                    "limit_bytes": {"type": "integer", "description": "psp daemon --cache-mib, in bytes (0: no cache)"},
                    "hits": {"type": "integer"},
                    "misses": {"type": "integer"},
                    "evictions": {"type": "integer"},
                },
                "required": ["entries", "bytes", "limit_bytes", "hits", "misses", "evictions"],
            },
            "versions_decoded": {"type": "integer", "description": "blobs read from the store and decoded since the start"},
            "browsers": {
                "type": "object",
                "properties": {"attached": {"type": "integer"}, "detached": {"type": "integer"}},
            },
            "watches": {"type": "integer"},
            "recordings": {"type": "integer", "description": "recordings running"},
            "replays": {"type": "integer", "description": "replays running"},
            "events": {
                "type": "object",
                "properties": {
                    "subscribers": {"type": "integer", "description": "open /v1/events WebSockets"},
                    "forwarded": {"type": "integer", "description": "versions of other writers announced through the store"},
                    "dropped": {"type": "integer", "description": "events dropped because the queue was full"},
                    "store_notices": {
                        "type": "object",
                        "description": "whether the store's version notices are followed (Redis), and the last error",
                        "properties": {"following": {"type": "boolean"}, "error": {"type": ["string", "null"]}},
                    },
                },
            },
        },
        "required": ["cache", "versions_decoded"],
    },
}


def _check_keywords(schema: Any, where: str) -> None:
    if not isinstance(schema, dict):
        return
    unknown = set(schema) - KEYWORDS
    if unknown:
        raise AssertionError(f"schema {where} uses {sorted(unknown)}, which the validator does not enforce")
    for name, sub in (schema.get("properties") or {}).items():
        _check_keywords(sub, f"{where}.{name}")
    for key in ("items", "additionalProperties", "propertyNames"):
        _check_keywords(schema.get(key), f"{where}[{key}]")


for _name, _schema in SCHEMAS.items():
    _check_keywords(_schema, _name)


_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    target = schema.get("$ref")
    if target is None:
        return schema
    return SCHEMAS[target[len(_REF_PREFIX):]]


def _where(path: str) -> str:
    return path or "the body"


@functools.lru_cache(maxsize=64)
def _pattern(pattern: str) -> re.Pattern[str]:
    """A schema pattern as ECMA-262 reads it: a final ``$`` is the end of the text (in Python it also
    matches before a final newline, which would let ``"name\n"`` through)."""
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern)


def validate(value: Any, schema: dict[str, Any], path: str = "") -> None:
    """Raise :class:`SchemaError` unless ``value`` matches ``schema``."""
    schema = _resolve(schema)
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else list(types)
        if not any(_TYPES[t](value) for t in names):
            raise SchemaError(f"{_where(path)}: expected {' or '.join(names)}, got {_json_type(value)}")
    if value is None:
        return
    if "enum" in schema and value not in schema["enum"]:
        raise SchemaError(f"{_where(path)}: expected one of {', '.join(map(repr, schema['enum']))}")
    if isinstance(value, str):
        if _LONE_SURROGATE.search(value) is not None:
            raise SchemaError(f"{_where(path)}: not Unicode text (it holds a lone surrogate)")
        if "minLength" in schema and len(value) < schema["minLength"]:
            raise SchemaError(f"{_where(path)}: shorter than {schema['minLength']} character(s)")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            raise SchemaError(f"{_where(path)}: longer than {schema['maxLength']} characters")
        if "pattern" in schema and _pattern(schema["pattern"]).search(value) is None:
            description = schema.get("description")
            raise SchemaError(f"{_where(path)}: invalid" + (f"; use {description}" if description else ""))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            raise SchemaError(f"{_where(path)}: less than {schema['minimum']}")
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            raise SchemaError(f"{_where(path)}: must be more than {schema['exclusiveMinimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            raise SchemaError(f"{_where(path)}: more than {schema['maximum']}")
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            raise SchemaError(f"{_where(path)}: fewer than {schema['minItems']} item(s)")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            raise SchemaError(f"{_where(path)}: more than {schema['maxItems']} items")
        if "items" in schema:
            for i, item in enumerate(value):
                validate(item, schema["items"], f"{path}[{i}]")
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        if "maxProperties" in schema and len(value) > schema["maxProperties"]:
            raise SchemaError(f"{_where(path)}: more than {schema['maxProperties']} entries")
        for name in schema.get("required", ()):
            if name not in value:
                raise SchemaError(f"{_where(path)}: {name!r} is required")
        extra = schema.get("additionalProperties", True)
        names = schema.get("propertyNames")
        for name, item in value.items():
            where = f"{path}.{name}" if path else name
            if names is not None:
                validate(name, names, f"{_where(path)}: the name {name!r}")
            if name in properties:
                validate(item, properties[name], where)
            elif extra is False:
                known = ", ".join(properties) or "none"
                raise SchemaError(f"{_where(path)}: unknown field {name!r} (known: {known})")
            elif isinstance(extra, dict):
                validate(item, extra, where)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
