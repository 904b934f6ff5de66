"""The protocol channel's integrity: every line a worker writes is authenticated for the host.

Each worker gets a fresh random key from the host when it is forked (in the
fork request, never on disk or in the environment). It prefixes each
protocol line with a keyed BLAKE2b tag over a sequence number and the line,
``<32 hex digits> <json>\\n``; the host checks the tag and the order. A line
written by anyone without the key (mechanism code writing to the worker's
pipe, as if every layer above had failed) or replayed out of order fails the
check, and the host treats it as a malformed response of the call in flight.

The key lives in a closure of the worker's own frames: mechanism code in the
restricted dialect cannot name it, and plain Python could reach it only
through frame or garbage-collector introspection, which the audit hook
refuses. Used by ``sandbox.worker`` (signing) and ``sandbox.process`` (checking).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

TAG_HEX = 32
KEY_BYTES = 16


def _tag(key: bytes, seq: int, body: bytes) -> bytes:
    mac = hashlib.blake2b(seq.to_bytes(8, "big") + body, key=key, digest_size=TAG_HEX // 2)
    return mac.hexdigest().encode()


def make_signer(key: bytes) -> Callable[[bytes], bytes]:
    """A function from one JSON line (without newline) to the authenticated line to write."""
    counter = [0]

    def sign(body: bytes) -> bytes:
        seq = counter[0]
        counter[0] = seq + 1
        return _tag(key, seq, body) + b" " + body + b"\n"

    return sign


class Verifier:
    """The host's side: checks the tag and sequence of each line from one worker."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._seq = 0

    def open(self, line: bytes) -> bytes | None:
        """The JSON body of an authentic line (the next in sequence), else None."""
        if len(line) <= TAG_HEX or line[TAG_HEX:TAG_HEX + 1] != b" ":
            return None
        body = line[TAG_HEX + 1:]
        if not hmac.compare_digest(line[:TAG_HEX], _tag(self._key, self._seq, body)):
            return None
        self._seq += 1
        return body
