"""Settings of the Binance connector, validated at the boundary (producer configuration).

The producer passes ``exchanges.<venue>.settings`` from ``config/features.yaml`` plus
``exchange`` (the venue id) and ``symbols`` (the venue's spellings). Every field has a
default, so ``BinanceSettings()`` is valid; a connector still needs ``symbols`` to connect.
All durations are in seconds.

Example::

    settings = BinanceSettings.from_mapping({"exchange": "binance-usdm",
                                             "symbols": ["BTCUSDT"],
                                             "base_url": "wss://fstream.binance.com",
                                             "rest_url": "https://fapi.binance.com",
                                             "rest_path_prefix": "/fapi/v1"})
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from coattail_framework.errors import ConfigError
from coattail_framework.events import ExchangeId, ExchangeSymbol

StreamKind = Literal["trade", "aggTrade"]

MAX_STREAMS_PER_CONNECTION = 1024
"""Binance's limit of streams on one websocket connection."""


class BinanceSettings(BaseModel):
    """Everything the Binance connector reads from configuration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    exchange: ExchangeId = "binance"
    """Venue id: ``TradeEvent.exchange`` and the ``event_id`` prefix (``binance``, ``binance-usdm``)."""
    symbols: tuple[ExchangeSymbol, ...] = ()
    """Symbols in Binance's spelling (``BTCUSDT``); stream names use them lower-cased."""
    base_url: str = "wss://stream.binance.com:9443"
    """Websocket base URL; USD-M futures: ``wss://fstream.binance.com``."""
    rest_url: str = "https://api.binance.com"
    """REST base URL for gap backfill; USD-M futures: ``https://fapi.binance.com``."""
    rest_path_prefix: str = "/api/v3"
    """Prefix of the public trades endpoints; USD-M futures: ``/fapi/v1``."""
    stream: StreamKind = "trade"
    """``trade`` (one message per fill) or ``aggTrade`` (fills of one taker order at one price)."""

    max_streams_per_connection: int = Field(MAX_STREAMS_PER_CONNECTION, ge=1, le=MAX_STREAMS_PER_CONNECTION)
    open_timeout_s: float = Field(10.0, gt=0)
    close_timeout_s: float = Field(5.0, gt=0)
    ping_interval_s: float | None = Field(20.0, gt=0)
    """Client keep-alive pings (None: only answer the server's pings, which always happens)."""
    ping_timeout_s: float | None = Field(20.0, gt=0)
    stale_after_s: float = Field(60.0, gt=0)
    """No message for this long: ``health_check()`` is False and the connection is recycled."""
    max_connection_age_s: float = Field(23.5 * 3600, gt=0)
    """Reconnect proactively before Binance closes a connection at 24 h."""
    max_buffered_messages: int = Field(10_000, ge=1)
    """Frames read from the socket but not yet consumed; beyond it reading pauses."""

    backoff_initial_s: float = Field(1.0, gt=0)
    backoff_multiplier: float = Field(2.0, ge=1)
    backoff_max_s: float = Field(60.0, gt=0)
    backoff_jitter: float = Field(0.5, ge=0, le=1)
    """Fraction of each delay drawn at random: a delay lies in ``[d * (1 - jitter), d]``."""
    healthy_after_s: float = Field(5.0, ge=0)
    """A connection open this long that delivered a message resets the backoff."""

    max_connection_attempts: int = Field(300, ge=1)
    connection_attempt_window_s: float = Field(300.0, gt=0)
    max_control_messages_per_s: int = Field(4, ge=1, le=4)
    """SUBSCRIBE/UNSUBSCRIBE messages sent per second and connection; Binance allows 5 incoming
    messages per second including pongs, so at most 4 leaves room for them."""

    rest_limit: int = Field(1000, ge=1, le=1000)
    """Trades per backfill request (Binance's maximum is 1000)."""
    rest_timeout_s: float = Field(10.0, gt=0)
    rest_max_retries: int = Field(5, ge=0)
    rest_weight_limit_per_minute: int = Field(6000, ge=1)
    rest_max_retry_after_s: float = Field(120.0, ge=0)
    """Longest ``Retry-After`` (429/418) a backfill waits out; a longer ban gives the gap up."""
    max_backfill_trades: int = Field(100_000, ge=1)
    """Largest gap filled over REST; a larger one is logged and kept as unrecovered."""

    max_trade_time_ahead_s: float = Field(60.0, ge=0)
    """A trade time further ahead of its receive time than this is rejected (quarantined)."""
    max_trade_time_behind_s: float = Field(24 * 3600.0, ge=0)
    """A trade time further behind its receive time than this is rejected (quarantined)."""
    max_trade_id_jump: int = Field(100_000, ge=1)
    """An id further than this from the next expected one is held, not emitted (see sequencing)."""
    resync_after_frames: int = Field(20, ge=1)
    """Held ids in a row after which a symbol restarts at the new ids (the jump was real)."""
    resync_after_s: float = Field(30.0, ge=0)
    """Seconds of held ids after which a symbol restarts at the new ids."""

    malformed_keep: int = Field(1000, ge=1)
    """How many rejected frames stay in memory for inspection (see ``coattail_framework.quarantine``)."""
    malformed_max_bytes: int = Field(8 * 1024 * 1024, ge=128 * 1024)
    """Bytes of rejected frames held in memory at most."""
    malformed_max_frame_bytes: int = Field(64 * 1024, ge=1, le=64 * 1024)
    """Each rejected frame is held cut to this many bytes."""
    malformed_path: Path | None = None
    """Optional append-only JSON-lines file receiving every malformed message."""
    malformed_log_interval_s: float = Field(10.0, ge=0)
    """At most one malformed-message log line per this interval (the rest are counted)."""

    @field_validator("base_url")
    @classmethod
    def _websocket_url(cls, value: str) -> str:
        if not value.startswith(("ws://", "wss://")):
            raise ValueError(f"must start with ws:// or wss://, e.g. wss://stream.binance.com:9443, got {value!r}")
        return value.rstrip("/")

    @field_validator("rest_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"must start with http:// or https://, e.g. https://api.binance.com, got {value!r}")
        return value.rstrip("/")

    @field_validator("rest_path_prefix")
    @classmethod
    def _path_prefix(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"must start with '/', e.g. /api/v3, got {value!r}")
        return value.rstrip("/")

    @field_validator("symbols")
    @classmethod
    def _unique_symbols(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(value))

    @classmethod
    def from_mapping(cls, settings: Mapping[str, Any] | None) -> BinanceSettings:
        """Validated settings; raises ``ConfigError`` naming each invalid key."""
        try:
            return cls.model_validate(dict(settings or {}))
        except ValidationError as error:
            raise ConfigError.from_validation(error, prefix=("settings",)) from error
