"""MOD-001 on real Binance spot BTCUSDT trades (the bundled archive CSV), against pandas.

The slice 2024-08-08 23:55:00 to 2024-08-09 00:03:10 UTC goes through the stream in four
micro-batches (consecutive time ranges); the same slice goes through the static path.
Per-minute trade counts must match pandas exactly; volumes match to float rounding
(sums in a different order). ``is_buyer_maker`` true means the taker SOLD.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import Row, SparkSession

from coattail_detector_volume_anomaly import VolumeAnomalyDetector
from coattail_devstack.testing import DetectorRun, run_detector_stream
from coattail_framework import CoattailConfig
from coattail_framework.schemas import UNIFIED_TRADE_EVENT

REPO_ROOT = Path(__file__).resolve().parents[3]
ARCHIVE = REPO_ROOT / "tests/data/binance/archive/BTCUSDT-trades-20240808T2354Z-20240809T0005Z.csv"
COLUMNS = ["id", "price", "qty", "quote_qty", "time", "is_buyer_maker", "is_best_match"]
START_MS = 1_723_161_300_000  # 2024-08-08T23:55:00Z
END_MS = START_MS + 8 * 60_000 + 10_000  # 2024-08-09T00:03:10Z
WATERMARK_SECONDS = 5


@pytest.fixture(scope="module")
def trades() -> pd.DataFrame:
    frame = pd.read_csv(ARCHIVE, header=None, names=COLUMNS)
    return frame[(frame.time >= START_MS) & (frame.time < END_MS)].reset_index(drop=True)


@pytest.fixture(scope="module")
def detector() -> VolumeAnomalyDetector:
    detector = VolumeAnomalyDetector()
    detector.configure(
        CoattailConfig.model_validate(
            {"modules": {"volume-anomaly": {"watermark_delay_seconds": WATERMARK_SECONDS, "min_baseline_windows": 2}}}
        )
    )
    return detector


def events(trades: pd.DataFrame) -> list[dict[str, Any]]:
    rows = []
    for trade in trades.itertuples():
        at = datetime.fromtimestamp(trade.time / 1000, tz=UTC)
        rows.append(
            {
                "event_id": f"binance:BTCUSDT:{trade.id}",
                "exchange": "binance",
                "symbol": "BTCUSDT",
                "price": float(trade.price),
                "quantity": float(trade.qty),
                "quote_volume": float(trade.quote_qty),
                "side": "sell" if trade.is_buyer_maker else "buy",
                "timestamp": at,
                "ingestion_timestamp": at,
                "trade_id": str(trade.id),
                "taker_order_id": None,
            }
        )
    return rows


def per_minute(trades: pd.DataFrame) -> pd.DataFrame:
    """The expected windows, computed with pandas from the CSV columns."""
    frame = trades.assign(
        minute_ms=trades.time - trades.time % 60_000,
        buy_quote=trades.quote_qty.where(~trades.is_buyer_maker, 0.0),
        sell_quote=trades.quote_qty.where(trades.is_buyer_maker, 0.0),
    )
    return frame.groupby("minute_ms").agg(
        trade_count=("id", "size"),
        base_volume=("qty", "sum"),
        quote_volume=("quote_qty", "sum"),
        buy_quote_volume=("buy_quote", "sum"),
        sell_quote_volume=("sell_quote", "sum"),
    )


def start_ms(row: Row) -> int:
    return int(row.window_start.replace(tzinfo=UTC).timestamp() * 1000)


def assert_windows_match(rows: list[Row], expected: pd.DataFrame) -> None:
    assert [start_ms(row) for row in rows] == list(expected.index)
    for row in rows:
        want = expected.loc[start_ms(row)]
        assert row.trade_count == want.trade_count
        got = (row.base_volume, row.quote_volume, row.buy_quote_volume, row.sell_quote_volume)
        assert got == pytest.approx(
            (want.base_volume, want.quote_volume, want.buy_quote_volume, want.sell_quote_volume), rel=1e-12
        )
        assert row.vwap == pytest.approx(want.quote_volume / want.base_volume, rel=1e-12)


@pytest.fixture(scope="module")
def stream(
    spark: SparkSession, detector: VolumeAnomalyDetector, trades: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory
) -> DetectorRun:
    rows = events(trades)
    bounds = [START_MS + k * 120_000 for k in range(4)] + [END_MS]
    batches = [
        [row for row, time in zip(rows, trades.time, strict=True) if low <= time < high]
        for low, high in itertools.pairwise(bounds)
    ]
    return run_detector_stream(spark, detector, batches, tmp_path_factory.mktemp("volume-real"))


def test_stream_per_minute_counts_and_volumes_match_pandas(stream: DetectorRun, trades: pd.DataFrame) -> None:
    expected = per_minute(trades)
    watermark_ms = int(trades.time.max()) - WATERMARK_SECONDS * 1000
    closed = expected[expected.index + 60_000 <= watermark_ms]
    assert len(closed) == 8  # 23:55 to 00:02; 00:03 is still open
    rows = sorted(stream.outputs, key=start_ms)
    assert_windows_match(rows, closed)
    assert sum(row.trade_count for row in rows) == int(closed.trade_count.sum())


def test_stream_baseline_of_the_last_window_matches_numpy(stream: DetectorRun, trades: pd.DataFrame) -> None:
    volumes = per_minute(trades).quote_volume.to_numpy()
    last = max(stream.outputs, key=start_ms)
    baseline = volumes[:7]
    assert last.baseline_size == 7
    assert last.baseline_mean == pytest.approx(baseline.mean(), rel=1e-12)
    assert last.baseline_std == pytest.approx(np.std(baseline, ddof=0), rel=1e-12)
    assert last.z_score == pytest.approx((volumes[7] - baseline.mean()) / np.std(baseline, ddof=0), rel=1e-9)


def test_static_path_gives_every_window(
    spark: SparkSession, detector: VolumeAnomalyDetector, trades: pd.DataFrame, stream: DetectorRun
) -> None:
    static = detector.process(spark.createDataFrame(events(trades), UNIFIED_TRADE_EVENT))
    assert static.schema == detector.output_schema
    rows = sorted(static.collect(), key=start_ms)
    assert_windows_match(rows, per_minute(trades))
    streamed = {start_ms(row): row for row in stream.outputs}
    stats = ("baseline_size", "baseline_mean", "baseline_std", "z_score")
    assert [rows[0][name] for name in stats] == [0, None, None, None]
    assert rows[1].z_score is streamed[start_ms(rows[1])].z_score is None  # one window of baseline: std 0
    for row in rows[2:8]:
        want = [streamed[start_ms(row)][name] for name in stats]
        assert [row[name] for name in stats] == pytest.approx(want, rel=1e-12)
