"""``coattail-stream-job reprocess``: time travel on raw_trades, current settings, *_reprocessed tables.

The catalog is the one ``run --local --root`` leaves (SQLite + warehouse under the root),
filled here with two appends to ``raw_trades`` (two snapshots) and the live ``alerts`` the
job produced with the default whale threshold ($100k). The reprocessing reads the first
snapshot with the whale threshold lowered to $50k and runs the whale and spread detectors.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import SparkSession

from coattail_devstack.localstack import local_config
from coattail_devstack.testing import trade
from coattail_framework.alerts import make_alert_id
from coattail_framework.config import ConfigLoader
from coattail_framework.config.model import CoattailConfig, SnapshotRetention
from coattail_framework.events import TakerSide, TradeEvent
from coattail_framework.iceberg import open_catalog
from coattail_framework.pipeline.ingest import RAW_TRADES_PARTITION
from coattail_framework.schemas import BASE_ALERT_RECORD, UNIFIED_TRADE_EVENT
from coattail_framework.sinks import IcebergSink
from coattail_framework.sinks.retention import expire_table_snapshots
from coattail_framework.sinks.router import ALERTS_PARTITION
from coattail_stream_job import cli
from coattail_stream_job.comparison import compare_alerts
from coattail_stream_job.timetravel import TimeTravelError, pinned, resolve_snapshot, stage_snapshot

T0 = datetime(2024, 8, 8, 23, 54, 0, tzinfo=UTC)
CONFIG_YAML = """
feature_tier: small
disabled_modules: [volume-anomaly]
symbols:
  BTC/USDT: {binance: BTCUSDT}
  BTC/USD: {coinbase: BTC-USD}
exchanges:
  binance: {connector: binance}
  coinbase: {connector: coinbase}
modules:
  whale:
    min_notional_usd: 50000
    thresholds: {medium: 50000, high: 500000, critical: 1000000}
  spread: {quote_equivalents: {USDT: USD}}
metrics: {enabled: false}
"""
"""The CURRENT configuration: whale orders from $50k (the live job ran with the default $100k)."""


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _binance(seconds: float, trade_id: int, quantity: str, side: TakerSide = "buy") -> TradeEvent:
    return trade(_at(seconds), "60000", quantity, side=side, trade_id=trade_id)


FIRST_APPEND = [
    *(_binance(5, trade_id, "1") for trade_id in (101, 102, 103)),  # one buy order of $180k
    _binance(10, 104, "1.2", side="sell"),  # $72k
    _binance(20, 105, "0.5"),  # with 106: one buy order of $60k
    _binance(20, 106, "0.5"),
    _binance(25, 107, "0.1"),  # $6k
    trade(_at(6), "60100", "0.5", exchange="coinbase", symbol="BTC-USD", trade_id="c-1"),  # the spread's second leg
    _binance(60, 108, "0.01"),  # moves every watermark past 23:54:30
]
SECOND_APPEND = [_binance(70, 109, "10"), _binance(70, 110, "10"), _binance(120, 111, "0.01")]  # a $1.2M order


def _whale_alert_id(seconds: float, side: TakerSide, first_trade_id: int) -> str:
    micros = int(_at(seconds).timestamp() * 1_000_000)
    return make_alert_id("MOD-002", "binance", "BTCUSDT", side, str(micros), str(first_trade_id), "")


LIVE_ALERTS: list[tuple[float, TakerSide, int, float, str]] = [
    (5, "buy", 101, 180_000.0, "medium"),
    (70, "buy", 109, 1_200_000.0, "critical"),
]
"""What the live job alerted with the default thresholds: (second, side, first trade id, notional, severity)."""


@dataclass
class Catalog:
    """The local stack's catalog with two raw_trades snapshots and the live alerts."""

    root: Path
    config_file: Path
    config: CoattailConfig
    snapshots: list[int]


def _trade_rows(spark: SparkSession, events: Sequence[TradeEvent]) -> Any:
    rows = []
    for event in events:
        values = event.model_dump()
        rows.append({**values, **{name: float(values[name]) for name in ("price", "quantity", "quote_volume")}})
    return spark.createDataFrame(rows, UNIFIED_TRADE_EVENT)


def _alert_rows(spark: SparkSession) -> Any:
    rows = [
        {
            "alert_id": _whale_alert_id(seconds, side, first),
            "alert_type": "whale_trade",
            "module_id": "MOD-002",
            "symbol": "BTCUSDT",
            "exchange": "binance",
            "severity": severity,
            "detected_at": _at(seconds),
            "message": f"BTCUSDT binance: taker {side.upper()} order ${notional:,.0f}",
            "ttl_epoch": int(_at(seconds).timestamp()) + 30 * 86_400,
            "details": json.dumps({"notional": notional}),
        }
        for seconds, side, first, notional, severity in LIVE_ALERTS
    ]
    return spark.createDataFrame(rows, BASE_ALERT_RECORD)


@pytest.fixture(scope="module")
def catalog(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    root = tmp_path_factory.mktemp("reprocess") / "stack"
    config_file = root.parent / "features.yaml"
    config_file.write_text(CONFIG_YAML)
    config = local_config(ConfigLoader(config_file, environ={}).load(), root, "http://127.0.0.1")
    sink = IcebergSink(config)
    for batch_id, events in enumerate((FIRST_APPEND, SECOND_APPEND)):
        appended = sink.append(
            "raw_trades",
            UNIFIED_TRADE_EVENT,
            RAW_TRADES_PARTITION,
            _trade_rows(spark, events),
            batch_id=batch_id,
            writer="ingest",
        )
        assert appended.rows == len(events)
    sink.append("alerts", BASE_ALERT_RECORD, ALERTS_PARTITION, _alert_rows(spark), batch_id=0, writer="detector-whale")
    table = open_catalog(config.iceberg, config.aws).load_table(("coattail", "raw_trades"))
    snapshots = [s.snapshot_id for s in sorted(table.snapshots(), key=lambda s: s.sequence_number or 0)]
    return Catalog(root, config_file, config, snapshots)


def _table(config: CoattailConfig, name: str) -> Any:
    return open_catalog(config.iceberg, config.aws).load_table((config.iceberg.database, name))


def test_time_travel_resolves_ids_and_times_and_names_what_is_wrong(catalog: Catalog) -> None:
    table = _table(catalog.config, "raw_trades")
    first, second = (table.snapshot_by_id(snapshot_id) for snapshot_id in catalog.snapshots)
    assert resolve_snapshot(table, snapshot_id=first.snapshot_id).snapshot_id == first.snapshot_id
    as_of_first = datetime.fromtimestamp(first.timestamp_ms / 1000, tz=UTC)
    assert resolve_snapshot(table, as_of=as_of_first).snapshot_id == first.snapshot_id
    as_of_second = datetime.fromtimestamp(second.timestamp_ms / 1000, tz=UTC) + timedelta(days=1)
    assert resolve_snapshot(table, as_of=as_of_second).snapshot_id == second.snapshot_id
    with pytest.raises(TimeTravelError, match=f"no snapshot 42; the latest are: {first.snapshot_id}"):
        resolve_snapshot(table, snapshot_id=42)
    with pytest.raises(TimeTravelError, match="no snapshot at or before 2000-01-01T00:00:00"):
        resolve_snapshot(table, as_of=datetime(2000, 1, 1, tzinfo=UTC))


def test_staging_writes_the_older_snapshot_in_trade_time_order_without_splitting_an_instant(
    catalog: Catalog, tmp_path: Path
) -> None:
    table = _table(catalog.config, "raw_trades")
    staged = stage_snapshot(table, catalog.snapshots[0], str(tmp_path / "input"), rows_per_file=2)
    files = sorted((tmp_path / "input").iterdir())
    batches = [[row.rsplit(":", 1)[1] for row in pq.read_table(f).column("event_id").to_pylist()] for f in files]
    # Two rows a file, except that the three fills at 23:54:05 and the two at 23:54:20 stay together.
    assert batches == [["101", "102", "103"], ["c-1", "104"], ["105", "106"], ["107", "108"]]
    assert [f.stat().st_mtime for f in files] == sorted(f.stat().st_mtime for f in files)
    assert (staged.files, staged.rows, staged.first_trade, staged.last_trade) == (4, 9, _at(5), _at(60))


def test_reprocess_applies_current_thresholds_to_the_older_snapshot(
    catalog: Catalog, capsys: pytest.CaptureFixture[str]
) -> None:
    originals = {name: _table(catalog.config, name).current_snapshot().snapshot_id for name in ("raw_trades", "alerts")}
    argv = ["reprocess", "--as-of-snapshot", str(catalog.snapshots[0]), "--config", str(catalog.config_file)]
    started = int(datetime.now(UTC).timestamp())
    code = cli.main([*argv, "--local", "--root", str(catalog.root), "--rows-per-batch", "3", "--json"])
    finished = int(datetime.now(UTC).timestamp()) + 1
    result = json.loads(capsys.readouterr().out)
    assert code == 0

    assert result["snapshot"] | {"committed_at": None} == {
        "id": catalog.snapshots[0],
        "committed_at": None,
        "trades": len(FIRST_APPEND),
        "micro_batches": 3,
        "first_trade": "2024-08-08T23:54:05+00:00",
        "last_trade": "2024-08-08T23:55:00+00:00",
    }
    orders = _table(catalog.config, "whale_trades_reprocessed").scan().to_arrow().to_pylist()
    assert sorted((o["first_trade_id"], o["side"], o["fill_count"], round(o["notional"])) for o in orders) == [
        ("101", "buy", 3, 180_000),
        ("104", "sell", 1, 72_000),
        ("105", "buy", 2, 60_000),
    ]
    spreads = _table(catalog.config, "exchange_spreads_reprocessed").scan().to_arrow().to_pylist()
    assert [(s["window_start"], s["window_end"]) for s in spreads] == [(_at(0), _at(30))]
    alerts = _table(catalog.config, "alerts_reprocessed").scan().to_arrow().to_pylist()
    expected = {
        _whale_alert_id(5, "buy", 101): "medium",
        _whale_alert_id(10, "sell", 104): "medium",
        _whale_alert_id(20, "buy", 105): "medium",
    }
    assert {a["alert_id"]: a["severity"] for a in alerts} == expected
    # Reprocessed alerts live ttl_days from when they are written, not from their 2024 event time.
    assert all(started + 30 * 86_400 <= a["ttl_epoch"] <= finished + 30 * 86_400 for a in alerts)
    assert result["table_rows"] == {
        "alerts_reprocessed": 3,
        "exchange_spreads_reprocessed": 1,
        "whale_trades_reprocessed": 3,
    }

    comparison = result["comparison"]
    # The live $1.2M alert came from a later snapshot's trades: outside this snapshot's range, not compared.
    assert comparison["counts"] == [{"module_id": "MOD-002", "severity": "medium", "original": 1, "reprocessed": 3}]
    assert comparison["in_both"] == 1
    assert comparison["only_original"] == []
    assert [a["alert_id"] for a in comparison["only_reprocessed"]] == [
        _whale_alert_id(10, "sell", 104),
        _whale_alert_id(20, "buy", 105),
    ]
    assert {name: _table(catalog.config, name).current_snapshot().snapshot_id for name in originals} == originals
    assert set(_table(catalog.config, "raw_trades").metadata.refs) == {"main"}, "the staging pin is released"
    assert not list((catalog.root / "checkpoints" / "reprocess").iterdir()), "the staging folder is removed"


def test_a_pinned_snapshot_outlives_expiry_until_released(tmp_path: Path) -> None:
    config = local_config(CoattailConfig(), tmp_path / "stack", "http://127.0.0.1")
    sink = IcebergSink(config)
    for batch_id in range(3):
        event = _binance(batch_id, 200 + batch_id, "1").model_dump()
        row = event | {"price": 60_000.0, "quantity": 1.0, "quote_volume": 60_000.0}
        rows = pa.Table.from_pylist([row])
        sink.append("raw_trades", UNIFIED_TRADE_EVENT, RAW_TRADES_PARTITION, rows, batch_id=batch_id, writer="ingest")
    table = _table(config, "raw_trades")
    first, second, third = (s.snapshot_id for s in table.snapshots())
    later = datetime.now(UTC) + timedelta(hours=1)
    keep_latest_only = SnapshotRetention(keep_all_minutes=0)

    with pinned(table, first, tag="coattail-reprocess-test"):
        assert set(table.refresh().metadata.refs) == {"main", "coattail-reprocess-test"}
        assert expire_table_snapshots(table, keep_latest_only, now=later).expired == 1
        assert [s.snapshot_id for s in table.refresh().snapshots()] == [first, third]
        assert table.scan(snapshot_id=first).to_arrow().num_rows == 1  # still readable while pinned

    assert set(table.refresh().metadata.refs) == {"main"}
    assert expire_table_snapshots(table, keep_latest_only, now=later).expired == 1
    assert [s.snapshot_id for s in table.refresh().snapshots()] == [third]
    missing = pytest.raises(TimeTravelError, match=rf"snapshot {second} no longer exists \(expired\)")
    with missing, pinned(table, second, tag="coattail-reprocess-missing"):
        pass


def test_reprocess_reports_a_missing_snapshot_as_a_usage_error(
    catalog: Catalog, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["reprocess", "--as-of-snapshot", "42", "--config", str(catalog.config_file), "--local"]
    assert cli.main([*argv, "--root", str(catalog.root)]) == 2
    assert "has no snapshot 42" in capsys.readouterr().err


def test_comparison_table_counts_by_module_and_severity_and_lists_one_sided_ids() -> None:
    def alert(alert_id: str, severity: str, module_id: str = "MOD-002") -> dict[str, Any]:
        return {
            "alert_id": alert_id,
            "module_id": module_id,
            "severity": severity,
            "exchange": "binance",
            "symbol": "BTCUSDT",
            "detected_at": _at(5),
            "message": f"finding {alert_id}",
        }

    original = [alert("a", "medium"), alert("b", "high")]
    reprocessed = [alert("a", "medium"), alert("c", "medium"), alert("d", "low", "MOD-003")]
    assert compare_alerts(original, reprocessed).render().splitlines() == [
        "module     severity   original  reprocessed  change",
        "---------------------------------------------------",
        "MOD-002    medium            1            2      +1",
        "MOD-002    high              1            0      -1",
        "MOD-003    low               0            1      +1",
        "alerts in both: 1",
        "only in original (1):",
        "  b  MOD-002  high     2024-08-08T23:54:05+00:00  finding b",
        "only in reprocessed (2):",
        "  c  MOD-002  medium   2024-08-08T23:54:05+00:00  finding c",
        "  d  MOD-003  low      2024-08-08T23:54:05+00:00  finding d",
    ]
