"""A ``latest_per_key`` view (MOD-008's ``/alpha``): the latest alert per combination of ``details`` keys.

The API pins ``coattail-detector-whale-alpha``: the routes are built from its declaration
(``WHALE_ALPHA``) with ``create_resolver``.

Seeded ``BTCUSDT`` markouts, seconds after ``BASE_TIME`` (a venue cannot hold two alerts of
one instant: the test rows' ids are module, venue, symbol and time):

    cohort (exchange, side, bucket)         60 s horizon     300 s horizon
    binance       buy   100K-500K           0, 40, 90        20, 80, 120
    binance-usdm  sell  1m+                 10, 50, 100      30, 70, 90

plus ``whale_alpha_signal`` alerts at 5 and 140 s, and ``ETHUSDT`` markouts newer than all.
The latest per key: 300 s buy at 120, 60 s sell at 100, then two at 90 (60 s buy before
300 s sell: ``binance`` sorts before ``binance-usdm``).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from coattail_api.app import create_resolver
from coattail_api.cursor import CursorCodec
from coattail_api.store import AlertStore
from coattail_detector_whale_alpha.metadata import DETECTOR_INFO

WHALE_ALPHA = DETECTOR_INFO
SIGNAL_TYPE, MARKOUT_TYPE = WHALE_ALPHA.alert_types

BUY = ("binance", "buy", "100K-500K")
SELL = ("binance-usdm", "sell", "1M+")
MARKOUT_SECONDS = {
    (BUY, 60): (0, 40, 90),
    (BUY, 300): (20, 80, 120),
    (SELL, 60): (10, 50, 100),
    (SELL, 300): (30, 70, 90),
}
SIGNAL_SECONDS = ((5, 1.5), (140, 3.2))
"""``(seconds after BASE_TIME, signal_t)`` of the ``whale_alpha_signal`` alerts."""


def utc_text(moment: Any) -> str:
    return str(moment.isoformat().replace("+00:00", "Z"))


def order_details(cohort: tuple[str, str, str], order_time: Any, symbol: str) -> dict[str, Any]:
    exchange, side, bucket = cohort
    notional = 250_000.0 if bucket == "100K-500K" else 1_500_000.0
    return {
        "exchange": exchange,
        "symbol": symbol,
        "side": side,
        "order_time": utc_text(order_time),
        "first_trade_id": "1001",
        "taker_order_id": None,
        "notional": notional,
        "notional_bucket": bucket,
        "entry_price": 60_000.0,
    }


def markout(
    kit: Any, seconds: int, cohort: tuple[str, str, str], horizon: int, cohort_n: int, *, symbol: str = "BTCUSDT"
) -> Any:
    """One ``whale_markout``: the order's ``horizon`` resolved ``seconds`` after ``BASE_TIME``."""
    resolved = kit.BASE_TIME + timedelta(seconds=seconds)
    return_bps = 1.5 * (seconds % 7) - 3.0
    details = {
        **order_details(cohort, resolved - timedelta(seconds=horizon), symbol),
        "horizon_seconds": horizon,
        "exit_price": 60_000.0 * (1 + return_bps / 10_000),
        "exit_time": utc_text(resolved - timedelta(seconds=1)),
        "return_bps": return_bps,
        "cohort_n": cohort_n,
        "cohort_mean_bps": 0.25 * cohort_n,
        "cohort_std_bps": 4.0 if cohort_n > 1 else None,
        "cohort_t": 0.1 * cohort_n if cohort_n > 1 else None,
        "cohort_hit_rate": 0.5,
    }
    message = f"{symbol} {cohort[0]} {cohort[1]} {cohort[2]} {horizon}s markout {return_bps:+.1f} bps"
    return kit.AlertRow("whale_markout", "MOD-008", symbol, cohort[0], "low", resolved, message, details)


def signal(kit: Any, seconds: int, signal_t: float, *, symbol: str = "BTCUSDT") -> Any:
    """One ``whale_alpha_signal`` on binance ``seconds`` after ``BASE_TIME``."""
    moment = kit.BASE_TIME + timedelta(seconds=seconds)
    details = {
        **order_details(BUY, moment, symbol),
        "signal_horizon_seconds": 300,
        "signal_n": 40,
        "signal_mean_bps": 2.0,
        "signal_std_bps": 5.0,
        "signal_t": signal_t,
        "signal_hit_rate": 0.6,
    }
    return kit.AlertRow("whale_alpha_signal", "MOD-008", symbol, "binance", "medium", moment, "signal", details)


@pytest.fixture(scope="module")
def seeded(kit: Any, moto_endpoint: str, alert_table: str) -> dict[tuple[Any, ...], list[Any]]:
    """``{(cohort, horizon): markouts oldest first, ("signals",): ..., ("ETHUSDT",): ...}``."""
    rows: dict[tuple[Any, ...], list[Any]] = {
        key: [markout(kit, seconds, key[0], key[1], n) for n, seconds in enumerate(times, start=1)]
        for key, times in MARKOUT_SECONDS.items()
    }
    rows["signals",] = [signal(kit, seconds, signal_t) for seconds, signal_t in SIGNAL_SECONDS]
    rows["ETHUSDT",] = [markout(kit, 200, BUY, 60, 7, symbol="ETHUSDT"), signal(kit, 210, 9.0, symbol="ETHUSDT")]
    everything = [row for group in rows.values() for row in group]
    for row in everything:
        alert_type = SIGNAL_TYPE if row.alert_type == "whale_alpha_signal" else MARKOUT_TYPE
        assert alert_type.details_problems(row.details) == []
    kit.write_alerts(alert_table, moto_endpoint, everything)
    return rows


def alpha_api(kit: Any, dynamodb: Any, table: str, endpoint: str, directory: Path, **api_env: str) -> Any:
    """``api(path, **query)`` over ``table`` serving MOD-008's views (from ``WHALE_ALPHA``) and the API's own."""
    settings = kit.settings_for(directory, table, endpoint, **api_env)
    store = AlertStore(dynamodb, table, read_budget=settings.read_budget)
    codec = CursorCodec(settings.cursor_key.get_secret_value())
    return kit.invoker(create_resolver(store, codec, settings, alert_types=WHALE_ALPHA.alert_types).resolve)


@pytest.fixture(scope="module")
def api(kit: Any, dynamodb: Any, alert_table: str, moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    return alpha_api(kit, dynamodb, alert_table, moto_endpoint, tmp_path_factory.mktemp("alpha"))


def latest(seeded: dict[tuple[Any, ...], list[Any]], cohort: tuple[str, str, str], horizon: int) -> Any:
    return seeded[cohort, horizon][-1]


def board_ids(response: Any) -> list[str]:
    assert response.status == 200, response.body
    return [entry["latest"]["alert_id"] for entry in response.body["entries"]]


def test_alpha_gives_the_latest_markout_per_cohort_and_horizon_latest_first(api: Any, seeded: Any) -> None:
    response = api("/alpha", symbol="BTCUSDT")

    assert board_ids(response) == [
        latest(seeded, BUY, 300).alert_id,
        latest(seeded, SELL, 60).alert_id,
        latest(seeded, BUY, 60).alert_id,
        latest(seeded, SELL, 300).alert_id,
    ]
    assert response.body["symbol"] == "BTCUSDT"
    assert response.body["complete"] is True
    assert [entry["key"] for entry in response.body["entries"]] == [
        {"exchange": "binance", "side": "buy", "notional_bucket": "100K-500K", "horizon_seconds": 300},
        {"exchange": "binance-usdm", "side": "sell", "notional_bucket": "1M+", "horizon_seconds": 60},
        {"exchange": "binance", "side": "buy", "notional_bucket": "100K-500K", "horizon_seconds": 60},
        {"exchange": "binance-usdm", "side": "sell", "notional_bucket": "1M+", "horizon_seconds": 300},
    ]


def test_each_entry_carries_the_whole_alert_with_the_cohort_statistics(api: Any, seeded: Any) -> None:
    row = latest(seeded, SELL, 60)

    entry = api("/alpha", symbol="BTCUSDT").body["entries"][1]["latest"]

    assert entry["details"] == dict(row.details)
    assert (entry["details"]["cohort_n"], entry["details"]["cohort_mean_bps"]) == (3, 0.75)
    assert (entry["alert_type"], entry["severity"], entry["detected_at"]) == (
        "whale_markout",
        "low",
        "2024-08-08T23:55:40.125000Z",
    )


def test_other_symbols_and_alert_types_are_left_out(api: Any, seeded: Any) -> None:
    eth = api("/alpha", symbol="ETHUSDT")
    none = api("/alpha", symbol="SOLUSDT")

    assert board_ids(eth) == [seeded["ETHUSDT",][0].alert_id]
    assert none.body == {"symbol": "SOLUSDT", "entries": [], "complete": True}


def test_since_is_inclusive_and_drops_older_markouts(kit: Any, api: Any, seeded: Any) -> None:
    at_90 = api("/alpha", symbol="BTCUSDT", since=utc_text(latest(seeded, BUY, 60).detected_at))
    after_90 = api("/alpha", symbol="BTCUSDT", since=utc_text(kit.BASE_TIME + timedelta(seconds=95)))

    assert board_ids(at_90) == board_ids(api("/alpha", symbol="BTCUSDT"))
    assert board_ids(after_90) == [latest(seeded, BUY, 300).alert_id, latest(seeded, SELL, 60).alert_id]
    assert after_90.body["complete"] is True


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({}, "symbol: field required"),
        ({"symbol": "btcusdt"}, "symbol: must be an upper-case symbol"),
        ({"symbol": "BTCUSDT", "since": "2024-08-08"}, "since: must be an ISO 8601 time"),
        (
            {"symbol": "BTCUSDT", "until": "2024-08-09T00:00:00Z"},
            "until: unknown parameter; this route takes symbol, since",
        ),
        ({"symbol": "BTCUSDT", "horizon_seconds": "60"}, "horizon_seconds: unknown parameter"),
    ],
)
def test_bad_parameters_are_a_400_naming_them(api: Any, query: dict[str, str], message: str) -> None:
    response = api("/alpha", **query)

    assert (response.status, response.body["statusCode"]) == (400, 400)
    assert response.body["message"].startswith(message), response.body["message"]


def test_a_markout_whose_key_disagrees_with_the_declaration_is_left_out(
    kit: Any, api: Any, moto_endpoint: str, alert_table: str
) -> None:
    good = markout(kit, 0, BUY, 60, 1, symbol="XRPUSDT")
    text_horizon = markout(kit, 10, BUY, 60, 2, symbol="XRPUSDT")
    text_horizon = replace(text_horizon, details={**text_horizon.details, "horizon_seconds": "60"})
    no_side = markout(kit, 20, BUY, 60, 3, symbol="XRPUSDT")
    no_side = replace(no_side, details={key: value for key, value in no_side.details.items() if key != "side"})
    kit.write_alerts(alert_table, moto_endpoint, [good, text_horizon, no_side])

    assert board_ids(api("/alpha", symbol="XRPUSDT")) == [good.alert_id]


def test_reaching_the_read_budget_answers_what_was_read_and_complete_false(
    kit: Any, dynamodb: Any, alert_table: str, moto_endpoint: str, seeded: Any, tmp_path: Path
) -> None:
    budgeted = alpha_api(kit, dynamodb, alert_table, moto_endpoint, tmp_path, COATTAIL_API_READ_BUDGET="3")

    cut = budgeted("/alpha", symbol="BTCUSDT")
    bounded = budgeted("/alpha", symbol="BTCUSDT", since=utc_text(kit.BASE_TIME + timedelta(seconds=110)))

    # The three newest BTCUSDT alerts: the signal at 140 s (read, then filtered out), 120 s and 100 s.
    assert board_ids(cut) == [latest(seeded, BUY, 300).alert_id, latest(seeded, SELL, 60).alert_id]
    assert cut.body["complete"] is False
    assert board_ids(bounded) == [latest(seeded, BUY, 300).alert_id]
    assert bounded.body["complete"] is True


def test_alpha_signals_lists_signals_over_min_signal_t(api: Any, seeded: Any) -> None:
    signals = seeded["signals",]

    every = api("/alpha-signals", symbol="BTCUSDT")
    strong = api("/alpha-signals", min_signal_t=3)

    assert [alert["alert_id"] for alert in every.body["alerts"]] == [signals[1].alert_id, signals[0].alert_id]
    assert [alert["alert_id"] for alert in strong.body["alerts"]] == [
        seeded["ETHUSDT",][1].alert_id,
        signals[1].alert_id,
    ]
