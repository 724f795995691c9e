"""The contract of an exchange connector plugin (entry-point group ``coattail.connectors``).

A connector runs in the producer process, on its asyncio event loop. It owns everything
one exchange needs: URL, subscription, keep-alive, reconnects, gap detection and the pure
``normalize`` function from a raw message to ``TradeEvent``\\ s. Optionally it also offers the
venue's past trades over REST (``trade_history()``, ask with ``offers_history()``), which a
batch job runs on its own event loop (``coattail_framework.history``).

Example (the producer's loop, simplified)::

    connector = registry.get_connector("binance")(settings={"symbols": ["BTCUSDT"]})
    async for event in connector.connect():
        publisher.put(event)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from coattail_framework.errors import PluginError
from coattail_framework.events import TradeEvent
from coattail_framework.history import TradeHistory
from coattail_framework.quarantine import Quarantine
from coattail_framework.simulator import ExchangeSimulator


@dataclass
class ConnectorStats:
    """Counters a connector keeps since it started; the producer publishes them as metrics."""

    messages: int = 0
    trades: int = 0
    malformed: int = 0
    reconnects: int = 0
    gaps: int = 0
    duplicates_dropped: int = 0
    backfilled: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counters by name."""
        return asdict(self)


class BaseConnector(ABC):
    """An exchange connector.

    Constructor contract: ``Connector(settings: Mapping[str, Any] | None = None, *,
    wall_clock: Callable[[], datetime] = <now, UTC>)``, valid with no arguments (defaults
    from the connector's own pydantic config model). The producer passes
    ``exchanges.<venue>.settings`` from the configuration plus ``exchange`` (the venue id)
    and ``symbols`` (the venue's spellings from the symbol catalogue). ``stats`` holds the
    connector's counters.

    ``wall_clock`` returns the receive time (aware UTC) the connector stamps on each frame:
    ``ingestion_timestamp``, the reference its trade-time window judges trade times
    against, and the time of quarantined frames. Live it is the real clock; a replay passes
    ``ExchangeSimulator.recorded_clock()`` so a recording is judged by its own clock.
    Staleness (``health_check``) and reconnect backoff are measured on the monotonic clock,
    never on ``wall_clock``, so health tells the truth in a replay too.
    """

    default_exchange: ClassVar[str]
    """The venue id used when settings name none, e.g. ``"binance"``."""

    simulator_class: ClassVar[type[ExchangeSimulator] | None] = None
    """The package's local exchange simulator, if it ships one (tests, replay)."""

    stats: ConnectorStats

    quarantine: Quarantine | None = None
    """Frames the connector could not use, kept (bounded) and counted by reason; None if it keeps none."""

    def quarantined(self) -> dict[str, int]:
        """Frames quarantined per reason since start (the producer publishes them as metrics)."""
        return {} if self.quarantine is None else dict(self.quarantine.counts)

    @abstractmethod
    def connect(self) -> AsyncIterator[TradeEvent]:
        """Connect, subscribe and yield normalized trades until ``shutdown()``.

        Runs on the producer's event loop. Reconnects by itself with backoff; ends (the
        iterator stops) only after ``shutdown()``, having yielded what it already read.
        """

    @abstractmethod
    def normalize(self, raw: Mapping[str, Any]) -> list[TradeEvent]:
        """Pure: the trades in one decoded exchange message (empty for non-trade messages).

        Raises ``ValueError`` naming the field for a message that claims to be a trade but
        cannot be one; the caller counts it and keeps it for inspection.
        """

    @abstractmethod
    def health_check(self) -> bool:
        """False when no message has arrived within the configured staleness limit."""

    @abstractmethod
    async def shutdown(self) -> None:
        """Stop: send a close frame, let ``connect()`` hand over what it read, and return."""

    @classmethod
    def offers_history(cls) -> bool:
        """Whether the connector can read past trades over REST (it overrides ``trade_history``)."""
        return cls.trade_history is not BaseConnector.trade_history

    def trade_history(self) -> TradeHistory:
        """The venue's REST trade history from this connector's settings (optional capability).

        Used by batch jobs (``coattail-stream-job load-history``) on their own event loop, not
        by the producer; see ``coattail_framework.history`` for units, time zone and paging.
        A connector that offers none keeps this default, which raises ``PluginError`` naming it.
        """
        raise PluginError(
            f"connector {type(self).__module__}.{type(self).__name__} ({self.default_exchange}) offers no "
            "trade history over REST (BaseConnector.trade_history is not implemented)"
        )
