"""Settings of the Coinbase connector: the producer passes ``exchanges.<venue>.settings``.

Every key has a default, so ``CoinbaseSettings()`` is valid; the producer adds ``exchange``
(the venue id) and ``symbols`` (Coinbase product ids such as ``BTC-USD`` from the symbol
catalogue). All durations are seconds.

Example::

    settings = CoinbaseSettings.model_validate({"symbols": ["BTC-USD"], "stale_after": 5})
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from coattail_framework.events import ExchangeId, ExchangeSymbol
from coattail_framework.quarantine import MAX_DETAIL_CHARS

DEFAULT_URL = "wss://ws-feed.exchange.coinbase.com"
DEFAULT_REST_URL = "https://api.exchange.coinbase.com"
CHANNELS = ("matches", "heartbeat")
"""The channels the connector subscribes to: trades and the per-product heartbeat."""


class BackoffSettings(BaseModel):
    """Reconnect delays: ``initial * multiplier**attempt``, capped at ``maximum``, with jitter.

    ``jitter`` is the fraction of each delay drawn at random (0 = none, 1 = full jitter).
    The attempt count resets once a connection stayed subscribed for ``healthy_after``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    initial: float = Field(default=0.5, gt=0)
    maximum: float = Field(default=30.0, gt=0)
    multiplier: float = Field(default=2.0, ge=1)
    jitter: float = Field(default=0.5, ge=0, le=1)
    healthy_after: float = Field(default=10.0, ge=0)

    @model_validator(mode="after")
    def _cap_above_initial(self) -> BackoffSettings:
        if self.maximum < self.initial:
            raise ValueError(f"backoff.maximum ({self.maximum}) must be >= backoff.initial ({self.initial})")
        return self


class CoinbaseSettings(BaseModel):
    """What one Coinbase connector connects to and how it behaves on faults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    exchange: ExchangeId = "coinbase"
    """Venue id: prefix of every ``event_id`` and ``TradeEvent.exchange``."""
    symbols: tuple[ExchangeSymbol, ...] = ()
    """Coinbase product ids to subscribe to, e.g. ``("BTC-USD", "ETH-USD")``."""
    url: str = Field(default=DEFAULT_URL, pattern=r"^wss?://")
    rest_url: str = Field(default=DEFAULT_REST_URL, pattern=r"^https?://")
    open_timeout: float = Field(default=10.0, gt=0)
    """Seconds allowed for the TCP + TLS + websocket handshake."""
    close_timeout: float = Field(default=5.0, gt=0)
    """Seconds to wait for the server's close frame on shutdown or recycle."""
    stale_after: float = Field(default=15.0, gt=0)
    """No message for this long (heartbeats arrive every second) = unhealthy: recycle the connection."""
    rest_timeout: float = Field(default=10.0, gt=0)
    rest_retries: int = Field(default=3, ge=1)
    """REST attempts per backfill page before the missing trades are reported unrecovered."""
    rest_page_size: int = Field(default=1000, ge=1, le=1000)
    max_backfill_trades: int = Field(default=10_000, ge=1)
    """At most this many missed trades are fetched per gap (the newest); the rest are reported."""
    dedupe_window: int = Field(default=100_000, ge=1)
    """Trade ids remembered (all products together) to drop trades seen twice."""
    max_trade_time_ahead_s: float = Field(default=60.0, ge=0)
    """A trade dated more than this after its receive time is rejected (``time_window``)."""
    max_trade_time_behind_s: float = Field(default=86_400.0, ge=0)
    """A trade dated more than this before its receive time is rejected (``time_window``)."""
    resync_after_frames: int = Field(default=20, ge=1)
    """Frames of a product in a row that disagree with its highest ``sequence`` or trade id
    (older, yet new trades) after which that mark is taken as absurd and reset."""
    resync_after_s: float = Field(default=30.0, gt=0)
    """Seconds of such disagreement after which the mark is reset, however few the frames."""
    rejected_buffer: int = Field(default=1000, ge=1)
    """Rejected frames kept in memory for inspection (``connector.quarantine``), at most."""
    rejected_max_bytes: int = Field(default=8 * 1024 * 1024, ge=1)
    """Bytes of rejected frames kept in memory, at most (the oldest go first)."""
    rejected_max_frame_bytes: int = Field(default=64 * 1024, ge=1)
    """A rejected frame is kept cut to this many bytes (UTF-8)."""
    rejected_path: Path | None = None
    """Optional append-only JSON-lines file receiving every rejected frame (the framework's quarantine format)."""
    log_interval: float = Field(default=60.0, gt=0)
    """At most one warning about rejected frames per this many seconds; it counts the ones not logged."""
    backoff: BackoffSettings = Field(default_factory=BackoffSettings)

    @model_validator(mode="after")
    def _quarantine_holds_a_frame(self) -> CoinbaseSettings:
        least = self.rejected_max_frame_bytes + 4 * MAX_DETAIL_CHARS
        if self.rejected_max_bytes < least:
            raise ValueError(
                f"rejected_max_bytes ({self.rejected_max_bytes}) must hold one whole frame: "
                f">= rejected_max_frame_bytes + {4 * MAX_DETAIL_CHARS} = {least}"
            )
        return self

    def subscribe_message(self) -> dict[str, object]:
        """The subscribe frame the connector sends after every (re)connect."""
        return {"type": "subscribe", "product_ids": list(self.symbols), "channels": list(CHANNELS)}
