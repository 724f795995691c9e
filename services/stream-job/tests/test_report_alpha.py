"""The replay report's whale-alpha section (MOD-008 ``whale_markouts``), from hand-built rows.

Pure Python: runs in the pytest process, no Spark, no AWS. Times are UTC; returns in bps.
Expectations are worked out by hand beside each row set.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from coattail_stream_job.replay.report import (
    Cohort,
    alpha_chart,
    html_report,
    markout_curves,
    summary_sections,
    summary_table,
)

T0 = datetime(2024, 8, 9, 12, 0, tzinfo=UTC)
SYNTHETIC = {"coinbase": ["BTC-USD"]}
NO_COHORT = (None, None, None, None, None)
LARGE_BUY = ("binance", "BTCUSDT", "buy", "large")
MEDIUM_BUY = ("binance", "BTCUSDT", "buy", "medium")
SYNTHETIC_SELL = ("coinbase", "BTC-USD", "sell", "large")


def markout(
    cohort: tuple[str, str, str, str],
    minute: int,
    first_trade_id: str,
    horizon_seconds: int,
    return_bps: float | None,
    stats: tuple[Any, Any, Any, Any, Any] = NO_COHORT,
) -> dict[str, Any]:
    """One ``whale_markouts`` row (the columns the report reads) of an order ``minute`` minutes after T0."""
    exchange, symbol, side, bucket = cohort
    order_time = T0 + timedelta(minutes=minute)
    n, mean, std, t, hit_rate = stats
    return {
        "exchange": exchange,
        "symbol": symbol,
        "side": side,
        "notional_bucket": bucket,
        "order_time": order_time,
        "first_trade_id": first_trade_id,
        "horizon_seconds": horizon_seconds,
        "horizon_end": order_time + timedelta(seconds=horizon_seconds),
        "return_bps": return_bps,
        "cohort_n": n,
        "cohort_mean_bps": mean,
        "cohort_std_bps": std,
        "cohort_t": t,
        "cohort_hit_rate": hit_rate,
    }


def markouts() -> list[dict[str, Any]]:
    """Three cohorts; rows deliberately out of order.

    binance BTCUSDT buy large: orders at minute 0 (id 100), 1 (id 9), 1 (id 10) and -2 (id 50,
    no entry price, so every return null). 1 min returns 10, 20, 30: mean 20, std 10, s.e.
    10 / sqrt 3; the last 1 min row is id 10 (ids 9 and 10 tie on time; 10 > 9 as numbers, not
    as text). 5 min returns 4 and 8: mean 6, std sqrt 8, s.e. 2; the last is id 9 (minute 1).
    binance BTCUSDT buy medium: one order, no entry price: no curve, cohort statistics null.
    coinbase BTC-USD sell large (synthetic): one order, 1 min return -5: n 1, no band.
    """
    return [
        markout(LARGE_BUY, 1, "10", 60, 30.0, (3, 20.0, 10.0, 20.0 / (10.0 / math.sqrt(3)), 1.0)),
        markout(LARGE_BUY, 0, "100", 0, 0.0),
        markout(LARGE_BUY, 0, "100", 60, 10.0, (1, 10.0, None, None, 1.0)),
        markout(LARGE_BUY, 0, "100", 300, 4.0, (1, 4.0, None, None, 1.0)),
        markout(LARGE_BUY, 1, "9", 0, 0.0),
        markout(LARGE_BUY, 1, "9", 60, 20.0, (2, 15.0, math.sqrt(50), 3.0, 1.0)),
        markout(LARGE_BUY, 1, "9", 300, 8.0, (2, 6.0, math.sqrt(8), 3.0, 1.0)),
        markout(LARGE_BUY, 1, "10", 0, 0.0),
        markout(LARGE_BUY, -2, "50", 0, None),
        markout(LARGE_BUY, -2, "50", 60, None),
        markout(LARGE_BUY, -2, "50", 300, None),
        markout(MEDIUM_BUY, 3, "77", 0, None),
        markout(MEDIUM_BUY, 3, "77", 60, None),
        markout(SYNTHETIC_SELL, 2, "5001", 0, 0.0),
        markout(SYNTHETIC_SELL, 2, "5001", 60, -5.0, (1, -5.0, None, None, 0.0)),
    ]


def summary() -> dict[str, Any]:
    """A ``summary.json`` document with nothing in it."""
    return {
        "events": {"published": 0, "read": 0, "valid": 0, "invalid": 0, "invalid_by_rule": {}, "warnings_by_rule": {}},
        "late_rows": {},
        "table_rows": {},
        "alerts": {"by_module": {}},
        "recordings": ["demo.jsonl.gz"],
        "config": "config/features.yaml",
        "wall_seconds": {"replay": 1.0},
    }


def alpha_section(tables: dict[str, list[dict[str, Any]]]) -> tuple[list[str], list[tuple[str, ...]]]:
    (section,) = [s for s in summary_sections(summary(), tables, SYNTHETIC) if s[0] == "Whale alpha: cohorts"]
    return section[1], [tuple(row) for row in section[2]]


def test_the_cohort_table_shows_the_last_rows_rolling_statistics_per_cohort_and_horizon() -> None:
    headers, rows = alpha_section({"whale_markouts": markouts()})

    assert headers == [
        "exchange",
        "symbol",
        "side",
        "bucket",
        "horizon",
        "n",
        "mean bps",
        "std bps",
        "t",
        "hit rate",
        "markouts in run",
    ]
    assert rows == [
        ("binance", "BTCUSDT", "buy", "large", "1m", "3", "+20.00", "10.00", "+3.46", "100.0%", "3"),
        ("binance", "BTCUSDT", "buy", "large", "5m", "2", "+6.00", "2.83", "+3.00", "100.0%", "2"),
        ("binance", "BTCUSDT", "buy", "medium", "1m", "n/a", "n/a", "n/a", "n/a", "n/a", "0"),
        ("coinbase", "BTC-USD [SYNTHETIC]", "sell", "large", "1m", "1", "-5.00", "n/a", "n/a", "0.0%", "1"),
    ]


def test_the_cohort_table_is_in_the_terminal_summary() -> None:
    text = summary_table(summary(), {"whale_markouts": markouts()}, SYNTHETIC)

    assert "Whale alpha: cohorts" in text
    assert "BTC-USD [SYNTHETIC]" in text


def test_markout_curves_average_the_runs_returns_and_skip_null_ones() -> None:
    curves = markout_curves({"whale_markouts": markouts()})

    assert list(curves) == [Cohort(*LARGE_BUY), Cohort(*SYNTHETIC_SELL)]
    large = [(m.horizon_seconds, m.n, m.mean_bps, m.std_error_bps) for m in curves[Cohort(*LARGE_BUY)]]
    assert large == [
        (0, 3, 0.0, 0.0),
        (60, 3, pytest.approx(20.0), pytest.approx(10.0 / math.sqrt(3))),
        (300, 2, pytest.approx(6.0), pytest.approx(2.0)),
    ]
    sell = [(m.horizon_seconds, m.n, m.mean_bps, m.std_error_bps) for m in curves[Cohort(*SYNTHETIC_SELL)]]
    assert sell == [(0, 1, 0.0, None), (60, 1, -5.0, None)]


def test_the_chart_draws_one_line_per_cohort_with_returns_and_a_band_where_n_is_at_least_2() -> None:
    svg = alpha_chart({"whale_markouts": markouts()}, SYNTHETIC).render()

    assert svg.count("<polyline") == 2
    assert svg.count("<polygon") == 1
    assert svg.count("<circle") == 5
    for horizon in (">entry<", ">1m<", ">5m<"):
        assert horizon in svg
    assert ">binance BTCUSDT buy large<" in svg
    assert "medium" not in svg
    assert "<script" not in svg


def test_synthetic_cohorts_are_tagged_in_the_chart_legend() -> None:
    svg = alpha_chart({"whale_markouts": markouts()}, SYNTHETIC).render()

    assert ">coinbase BTC-USD sell large [SYNTHETIC]<" in svg
    assert "binance BTCUSDT buy large [SYNTHETIC]" not in svg


def test_a_band_is_not_drawn_across_a_horizon_with_a_single_markout() -> None:
    rows = [markout(LARGE_BUY, minute, str(minute), 0, 0.0) for minute in range(2)]
    rows += [markout(LARGE_BUY, minute, str(minute), 60, 5.0 * minute) for minute in range(2)]
    rows += [markout(LARGE_BUY, 0, "0", 300, 7.0)]
    rows += [markout(LARGE_BUY, minute, str(minute), 900, 1.0 + minute) for minute in range(2)]

    svg = alpha_chart({"whale_markouts": rows}, {}).render()

    assert svg.count("<polygon") == 1
    assert svg.count('stroke-width="4"') == 1


def test_the_report_shows_the_alpha_section_when_the_run_has_markouts() -> None:
    page = html_report(summary(), {"whale_markouts": markouts()}, [], synthetic=SYNTHETIC, notes=[])

    assert "<h2>Whale alpha: cohorts</h2>" in page
    assert "<h2>Whale alpha: markout curves per cohort" in page
    assert "<polyline" in page


@pytest.mark.parametrize("tables", [{}, {"whale_markouts": []}], ids=["no table", "no rows"])
def test_a_run_without_markouts_has_no_alpha_section(tables: dict[str, list[dict[str, Any]]]) -> None:
    titles = [title for title, _, _ in summary_sections(summary(), tables, SYNTHETIC)]
    page = html_report(summary(), tables, [], synthetic=SYNTHETIC, notes=[])

    assert not [title for title in titles if "alpha" in title]
    assert "Whale alpha" not in page
    assert "Whale alpha" not in summary_table(summary(), tables, SYNTHETIC)


def test_a_latest_markout_without_an_entry_price_does_not_hide_the_cohorts_statistics() -> None:
    rows = [
        markout(LARGE_BUY, 0, "100", 60, 10.0, (1, 10.0, None, None, 1.0)),
        markout(LARGE_BUY, 3, "300", 60, None),  # later, but no entry price: carries no statistics
    ]
    (cohorts,) = [
        rows for title, _, rows in summary_sections(summary(), {"whale_markouts": rows}, {}) if "cohorts" in title
    ]
    assert cohorts == [["binance", "BTCUSDT", "buy", "large", "1m", "1", "+10.00", "n/a", "n/a", "100.0%", "1"]]
