"""The two pieces of the protobuf wire format that psp_cdp writes by hand."""

from __future__ import annotations

__all__ = ["varint", "length_delimited"]


def varint(value: int) -> bytes:
    """A base-128 varint."""
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def length_delimited(number: int, payload: bytes) -> bytes:
    """Field ``number`` holding ``payload`` (a message, bytes or a string)."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload
