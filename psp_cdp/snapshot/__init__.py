"""Layer 2: the data model, codecs and container format. No I/O, no CDP."""

from . import model
from .codec import decode, encode, from_json, to_json

__all__ = ["model", "encode", "decode", "to_json", "from_json"]
