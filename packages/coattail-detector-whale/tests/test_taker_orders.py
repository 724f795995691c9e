"""Grouping fills into taker orders (pure pandas, no Spark)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from coattail_detector_whale.taker_orders import FILL_COLUMNS, assign_orders, close_orders, summarize_orders


def fills(*rows: tuple[Any, ...]) -> pd.DataFrame:
    """Rows of (trade_id, taker_order_id, side, time_us, price, quantity); quote = price x quantity."""
    frame = pd.DataFrame(rows, columns=list(FILL_COLUMNS[:-1]))
    return frame.assign(quote_volume=frame["price"] * frame["quantity"])


def test_consecutive_ids_at_one_time_and_side_are_one_order_in_any_row_order() -> None:
    batch = fills(
        ("12", None, "buy", 1_000, 101.0, 1.0),
        ("10", None, "buy", 1_000, 100.0, 1.0),
        ("11", None, "buy", 1_000, 100.5, 2.0),
    )
    orders = summarize_orders(assign_orders(batch))
    assert orders.to_dict("records") == [
        {
            "side": "buy",
            "order_time_us": 1_000,
            "last_fill_time_us": 1_000,
            "notional": 402.0,
            "base_quantity": 4.0,
            "fill_count": 3,
            "first_trade_id": "10",
            "last_trade_id": "12",
            "first_price": 100.0,
            "last_price": 101.0,
            "vwap_price": 100.5,
            "price_impact_bps": 100.0,
            "taker_order_id": None,
        }
    ]


def test_an_id_gap_opposite_sides_and_other_times_start_new_orders() -> None:
    batch = fills(
        ("1", None, "sell", 1_000, 100.0, 1.0),
        ("2", None, "sell", 1_000, 99.0, 1.0),
        ("3", None, "buy", 1_000, 100.0, 1.0),
        ("4", None, "sell", 1_000, 98.0, 1.0),
        ("5", None, "sell", 2_000, 98.0, 1.0),
    )
    orders = summarize_orders(assign_orders(batch))
    assert orders[["side", "order_time_us", "fill_count", "first_trade_id", "last_trade_id"]].values.tolist() == [
        ["buy", 1_000, 1, "3", "3"],
        ["sell", 1_000, 2, "1", "2"],
        ["sell", 1_000, 1, "4", "4"],
        ["sell", 2_000, 1, "5", "5"],
    ]
    assert orders["price_impact_bps"].tolist() == [0.0, 100.0, 0.0, 0.0]


def test_taker_order_id_groups_fills_across_times_and_ignores_id_gaps() -> None:
    batch = fills(
        ("900", "ord-1", "buy", 5_000_400, 60060.0, 10.0),
        ("897", "ord-1", "buy", 5_000_000, 60000.0, 10.0),
        ("898", "ord-2", "sell", 5_000_000, 60000.0, 2.0),
    )
    orders = summarize_orders(assign_orders(batch))
    assert orders[["taker_order_id", "order_time_us", "last_fill_time_us", "notional", "fill_count"]].values.tolist() == [
        ["ord-1", 5_000_000, 5_000_400, 1_200_600.0, 2],
        ["ord-2", 5_000_000, 5_000_000, 120_000.0, 1],
    ]
    assert orders["vwap_price"].tolist() == [60030.0, 60000.0]


def test_missing_and_non_integer_ids_never_split_an_order() -> None:
    batch = fills(
        (None, None, "buy", 1_000, 100.0, 1.0),
        ("a7", None, "buy", 1_000, 100.0, 1.0),
        ("7", None, "buy", 1_000, 100.0, 1.0),
    )
    orders = summarize_orders(assign_orders(batch))
    assert orders[["fill_count", "first_trade_id", "last_trade_id"]].values.tolist() == [[3, "7", None]]


def test_close_orders_keeps_what_the_watermark_has_not_passed() -> None:
    batch = fills(
        ("1", None, "buy", 1_000_000, 100.0, 1.0),
        ("2", None, "buy", 2_500_000, 100.0, 1.0),
        ("3", "ord-9", "sell", 1_999_000, 100.0, 1.0),
        ("4", "ord-9", "sell", 3_000_500, 100.0, 1.0),
    )
    split = close_orders(batch, watermark_us=2_000_000)
    assert split.closed["first_trade_id"].tolist() == ["1"]
    assert sorted(split.open_fills["trade_id"]) == ["2", "3", "4"]
    assert list(split.open_fills.columns) == list(FILL_COLUMNS)
    assert split.next_close_ms == 2_500

    everything = close_orders(batch, watermark_us=3_001_000)
    assert everything.closed["fill_count"].tolist() == [1, 2, 1]
    assert everything.open_fills.empty
    assert everything.next_close_ms is None
