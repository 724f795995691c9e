"""Rebuild taker orders from fills: pure pandas, no Spark.

Runs in the Python worker of the whale detector's ``applyInPandasWithState`` (one call per
(exchange, symbol) and micro-batch), and directly in unit tests. A market order that sweeps
the book arrives as many fills; they are grouped back into one order:

- fills carrying a ``taker_order_id`` (Coinbase) belong to the order with that id and side;
- fills without one (Binance) belong to the same order when they share the taker side and
  the exact trade time AND their trade ids are consecutive integers; a gap in the ids
  (another order's fill in between) starts a new order. Ids that are missing or not
  integers never split an order: such fills sort after the numbered ones of their time.

Fills are sorted before grouping (rows reach a worker in no particular order), so the same
fills always give the same orders. Times are integers in microseconds since the epoch (UTC).

Example::

    >>> fills = pd.DataFrame({"trade_id": ["7", "8"], "taker_order_id": [None, None],
    ...     "side": ["buy", "buy"], "time_us": [1_000, 1_000], "price": [100.0, 101.0],
    ...     "quantity": [1.0, 1.0], "quote_volume": [100.0, 101.0]})
    >>> orders = summarize_orders(assign_orders(fills))
    >>> orders[["notional", "fill_count", "first_trade_id", "last_trade_id"]].values.tolist()
    [[201.0, 1, '7', '8']]
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from coattail_detector_whale.schema import PENDING_FILLS

FILL_COLUMNS: tuple[str, ...] = tuple(PENDING_FILLS.fieldNames())
"""Columns of a fills frame: ``PENDING_FILLS``'s fields, one row per fill."""

ORDER_COLUMNS: tuple[str, ...] = (
    "side",
    "order_time_us",
    "last_fill_time_us",
    "notional",
    "base_quantity",
    "fill_count",
    "first_trade_id",
    "last_trade_id",
    "first_price",
    "last_price",
    "vwap_price",
    "price_impact_bps",
    "taker_order_id",
)
"""Columns of an orders frame (``summarize_orders``), indexed by ``order_no``."""

_INTEGER_ID = r"\d{1,18}"
_KEY_SEPARATOR = "\x1f"
BPS = 10_000.0


def empty_fills() -> pd.DataFrame:
    """A fills frame with no rows and the right dtypes."""
    return pd.DataFrame(
        {
            "trade_id": pd.Series(dtype=object),
            "taker_order_id": pd.Series(dtype=object),
            "side": pd.Series(dtype=object),
            "time_us": pd.Series(dtype="int64"),
            "price": pd.Series(dtype="float64"),
            "quantity": pd.Series(dtype="float64"),
            "quote_volume": pd.Series(dtype="float64"),
        }
    )


def _trade_numbers(trade_id: pd.Series) -> pd.Series:
    """Trade ids as nullable integers; <NA> where an id is missing or not a plain integer."""
    text = trade_id.astype("string")
    numeric = text.str.fullmatch(_INTEGER_ID).fillna(False).astype(bool)
    return text.where(numeric).astype("Int64")


def assign_orders(fills: pd.DataFrame) -> pd.DataFrame:
    """The fills sorted by order, with ``order_no`` (0, 1, ...) naming each fill's taker order."""
    sorted_fills = fills.reset_index(drop=True).copy()
    by_order_id = sorted_fills["taker_order_id"].notna()
    side_key = sorted_fills["side"].astype(str) + _KEY_SEPARATOR
    sorted_fills["_order_key"] = np.where(
        by_order_id,
        "o" + _KEY_SEPARATOR + side_key + sorted_fills["taker_order_id"].astype(str),
        "t" + _KEY_SEPARATOR + side_key + sorted_fills["time_us"].astype(str),
    )
    sorted_fills["_trade_no"] = _trade_numbers(sorted_fills["trade_id"])
    sorted_fills = sorted_fills.sort_values(
        ["_order_key", "time_us", "_trade_no", "trade_id", "price", "quantity"],
        na_position="last",
        kind="mergesort",
    ).reset_index(drop=True)
    key = sorted_fills["_order_key"]
    step = sorted_fills["_trade_no"] - sorted_fills["_trade_no"].shift()
    id_gap = (sorted_fills["taker_order_id"].isna() & (step != 1)).fillna(False).astype(bool)
    starts_order = (key != key.shift()) | id_gap
    sorted_fills["order_no"] = starts_order.cumsum() - 1
    return sorted_fills.drop(columns=["_order_key", "_trade_no"])


def summarize_orders(assigned: pd.DataFrame) -> pd.DataFrame:
    """One row per ``order_no`` of ``assign_orders`` output: ``ORDER_COLUMNS``, index ``order_no``,
    earliest order first."""
    grouped = assigned.groupby("order_no", sort=True)
    first = assigned.drop_duplicates("order_no", keep="first").set_index("order_no")
    last = assigned.drop_duplicates("order_no", keep="last").set_index("order_no")
    notional = grouped["quote_volume"].sum()
    base_quantity = grouped["quantity"].sum()
    against_taker = np.where(first["side"] == "buy", 1.0, -1.0)
    orders = pd.DataFrame(
        {
            "side": first["side"],
            "order_time_us": grouped["time_us"].min(),
            "last_fill_time_us": grouped["time_us"].max(),
            "notional": notional,
            "base_quantity": base_quantity,
            "fill_count": grouped.size().astype("int64"),
            "first_trade_id": first["trade_id"],
            "last_trade_id": last["trade_id"],
            "first_price": first["price"],
            "last_price": last["price"],
            "vwap_price": notional / base_quantity,
            # + 0.0 turns the -0.0 of an unmoved sell into 0.0
            "price_impact_bps": (last["price"] - first["price"]) / first["price"] * BPS * against_taker + 0.0,
            "taker_order_id": first["taker_order_id"],
        }
    )
    return orders.loc[:, list(ORDER_COLUMNS)].sort_values(["order_time_us", "side"], kind="mergesort")


class OrderSplit(NamedTuple):
    """``close_orders`` result: closed orders, the fills still open, and when to look again."""

    closed: pd.DataFrame
    """``summarize_orders`` rows of the orders the watermark has passed."""
    open_fills: pd.DataFrame
    """Fills (``FILL_COLUMNS``) of the orders still open."""
    next_close_ms: int | None
    """Event-time timeout (ms) that fires once the watermark passes the earliest open order;
    Spark fires it when the watermark is strictly greater. None when nothing is open."""


def close_orders(fills: pd.DataFrame, watermark_us: int) -> OrderSplit:
    """Split ``fills`` into the orders the watermark has passed and the fills still open.

    An order is closed when its last fill is older than ``watermark_us``: no later fill can
    join it, because Spark drops fills at or before the watermark as late.
    """
    assigned = assign_orders(fills)
    orders = summarize_orders(assigned)
    is_closed = orders["last_fill_time_us"] < watermark_us
    open_fills = assigned[~assigned["order_no"].isin(orders.index[is_closed])]
    open_last_fill_us = orders.loc[~is_closed, "last_fill_time_us"]
    next_close_ms = None if open_last_fill_us.empty else int(open_last_fill_us.min()) // 1000
    return OrderSplit(orders[is_closed], open_fills.loc[:, list(FILL_COLUMNS)].reset_index(drop=True), next_close_ms)
