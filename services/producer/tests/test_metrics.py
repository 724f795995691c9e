"""Connector counters and quarantined frames reach the producer's metrics, per venue and reason."""

from __future__ import annotations

from dataclasses import dataclass

from coattail_framework.connector import ConnectorStats
from coattail_producer.metrics import VenueMetrics, collect, render_prometheus
from coattail_producer.publisher import LatencyWindow, PublisherStats


@dataclass
class VenueStats(ConnectorStats):
    """A connector's own counters beside the framework's (as Binance's ``BinanceStats``)."""

    non_market_trades: int = 0
    resyncs: int = 0


def test_a_connectors_own_counters_and_its_quarantine_are_published_per_venue() -> None:
    stats = VenueStats(messages=10, trades=7, malformed=3, non_market_trades=2, resyncs=1)
    venues = {"binance": VenueMetrics(10, 0, True, stats, {"json": 2, "time_window": 1})}

    samples = collect(PublisherStats(), 0, venues)
    by_name = {(s.name, s.labels): s.value for s in samples if s.labels}

    assert by_name[("ConnectorNonMarketTrades", (("exchange", "binance"),))] == 2
    assert by_name[("ConnectorResyncs", (("exchange", "binance"),))] == 1
    assert by_name[("ConnectorMalformed", (("exchange", "binance"),))] == 3
    assert [(s.labels, s.value) for s in samples if s.name == "FramesQuarantined"] == [
        ((("exchange", "binance"), ("reason", "json")), 2),
        ((("exchange", "binance"), ("reason", "time_window")), 1),
    ]
    text = render_prometheus(samples, LatencyWindow())
    assert 'coattail_producer_frames_quarantined_total{exchange="binance",reason="json"} 2\n' in text
    assert 'coattail_producer_connector_non_market_trades_total{exchange="binance"} 2\n' in text


def test_a_venue_without_a_quarantine_publishes_no_quarantine_samples() -> None:
    samples = collect(PublisherStats(), 0, {"x": VenueMetrics(0, 0, True, ConnectorStats())})
    assert [s for s in samples if s.name == "FramesQuarantined" or s.name.startswith("ConnectorN")] == []
