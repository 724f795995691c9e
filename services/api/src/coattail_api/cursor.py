"""Opaque pagination cursors: a signed position in one query.

A cursor is ``<payload>.<signature>``, both base64url without padding. The payload is
JSON ``{"v": 1, "q": <query fingerprint>, "k": <exclusive start key>}``; the signature is
HMAC-SHA256 over the payload with the API's cursor key. ``decode`` accepts a cursor only
when the signature matches, the fingerprint equals the current query's (same route,
index, partition, time range and filters; the page size may change between pages) and
the start key names exactly the attributes that index's pagination needs, each a
non-empty string DynamoDB accepts as a key value. Anything else (garbled, truncated,
re-signed junk) raises ``InvalidCursorError``, which the API turns into a 400.

Example::

    >>> codec = CursorCodec(b"k" * 32)
    >>> token = codec.encode("fp", {"alert_id": "a", "detected_at": "t", "symbol": "BTCUSDT"})
    >>> codec.decode(token, "fp", {"alert_id", "detected_at", "symbol"})
    {'alert_id': 'a', 'detected_at': 't', 'symbol': 'BTCUSDT'}
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping, Set
from typing import Any

CURSOR_VERSION = 1
MAX_CURSOR_CHARS = 2048
MAX_KEY_VALUE_BYTES = 1024
"""DynamoDB's limit for a sort key value (UTF-8), the smaller of its two key attribute limits."""
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")

StartKey = dict[str, str]
"""A DynamoDB exclusive start key with string attributes: ``{attribute: value}``."""


class InvalidCursorError(ValueError):
    """The cursor was not issued by this API for this query."""


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _is_key_value(value: object) -> bool:
    """Whether ``value`` is a string DynamoDB accepts as a key attribute value."""
    if not isinstance(value, str) or not value:
        return False
    try:
        return len(value.encode("utf-8")) <= MAX_KEY_VALUE_BYTES
    except UnicodeEncodeError:
        return False


def query_fingerprint(parts: Mapping[str, Any]) -> str:
    """A short stable hash of what defines a query (route, index, partition, range, filters)."""
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


class CursorCodec:
    """Signs and verifies cursors with one HMAC key (shared by every instance of the API)."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _sign(self, payload: bytes) -> str:
        return _b64encode(hmac.new(self._key, payload, hashlib.sha256).digest())

    def encode(self, fingerprint: str, start_key: StartKey) -> str:
        """The cursor for resuming query ``fingerprint`` after ``start_key``."""
        payload = json.dumps(
            {"v": CURSOR_VERSION, "q": fingerprint, "k": start_key}, sort_keys=True, separators=(",", ":")
        ).encode("utf-8")
        return f"{_b64encode(payload)}.{self._sign(payload)}"

    def decode(self, token: str, fingerprint: str, attributes: Set[str]) -> StartKey:
        """The start key inside ``token``; raises ``InvalidCursorError`` saying why it is refused."""
        if len(token) > MAX_CURSOR_CHARS or token.count(".") != 1:
            raise InvalidCursorError("not a cursor issued by this API")
        encoded_payload, signature = token.split(".")
        if not (_BASE64URL.fullmatch(encoded_payload) and _BASE64URL.fullmatch(signature)):
            raise InvalidCursorError("not a cursor issued by this API")
        try:
            payload = _b64decode(encoded_payload)
        except (binascii.Error, ValueError):
            raise InvalidCursorError("not a cursor issued by this API") from None
        if not hmac.compare_digest(self._sign(payload), signature):
            raise InvalidCursorError("signature does not match; pass the next_cursor of a previous page unchanged")
        try:
            content = json.loads(payload)
        except ValueError:
            raise InvalidCursorError("does not hold a position for this query") from None
        if not isinstance(content, dict):
            raise InvalidCursorError("does not hold a position for this query")
        if content.get("v") != CURSOR_VERSION:
            raise InvalidCursorError("issued by another version of the API; start again without a cursor")
        if content.get("q") != fingerprint:
            raise InvalidCursorError("issued for different query parameters; repeat the query it came from")
        start_key = content.get("k")
        if (
            not isinstance(start_key, dict)
            or set(start_key) != set(attributes)
            or not all(_is_key_value(value) for value in start_key.values())
        ):
            raise InvalidCursorError("does not hold a position for this query")
        return start_key
