"""Taker orders rebuilt from fills: Spark column expressions shared by MOD-002's two paths.

The stateful query (``WhaleDetector.process``) and the early query
(``WhaleDetector.early_alerts``) build an order's figures with the same expressions over
the same sorted fills, so both give the same row and the same alert for one order
(floating-point sums in the same order). Pure expressions: they build plans on the driver.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

from coattail_framework.schemas import EVENT_TIME_COLUMN

INTEGER_TRADE_ID = r"^[0-9]{1,18}$"
BPS = 10_000.0
GROUP_KEY = ("exchange", "symbol", "side", EVENT_TIME_COLUMN, "taker_order_id")


def trade_number() -> Column:
    """``trade_id`` as a long when it is an integer (exchanges number a product's trades consecutively), else null."""
    return F.when(F.col("trade_id").rlike(INTEGER_TRADE_ID), F.col("trade_id").cast("long"))


def fill_struct() -> Column:
    """One fill as a struct whose natural order is the fill order: numbered fills first, by id."""
    trade_no = trade_number()
    return F.struct(
        trade_no.isNull().alias("unnumbered"),
        trade_no.alias("trade_no"),
        F.col("trade_id"),
        F.col("price"),
        F.col("quantity"),
        F.coalesce(F.col("quote_volume"), F.col("price") * F.col("quantity")).alias("quote_volume"),
    )


def split_runs(fills: Column, split_on_id_gaps: Column) -> Column:
    """The sorted ``fills`` of one group cut into taker orders (array of fill arrays)."""
    count = F.size(fills)

    def starts_order(position: Column) -> Column:
        current = F.get(fills, position - 1)["trade_no"]
        previous = F.get(fills, position - 2)["trade_no"]
        gap = current.isNotNull() & previous.isNotNull() & (current != previous + 1)
        return (position == 1) | (split_on_id_gaps & gap)

    starts = F.filter(F.sequence(F.lit(1), count), starts_order)
    return F.transform(
        starts,
        lambda start, index: F.slice(fills, start, F.coalesce(F.get(starts, index + 1), count + 1) - start),
    )


def order_figures(run: Column, side: Column) -> Column:
    """The ``WHALE_TRADES`` figures of one run of fills (first and last by fill order)."""
    first, last = F.get(run, 0), F.element_at(run, -1)
    notional = F.aggregate(run, F.lit(0.0), lambda total, fill: total + fill["quote_volume"])
    base_quantity = F.aggregate(run, F.lit(0.0), lambda total, fill: total + fill["quantity"])
    against_taker = F.when(side == "buy", F.lit(1.0)).otherwise(F.lit(-1.0))
    # + 0.0 turns the -0.0 of an unmoved sell into 0.0
    impact = (last["price"] - first["price"]) / first["price"] * BPS * against_taker + F.lit(0.0)
    return F.struct(
        notional.alias("notional"),
        base_quantity.alias("base_quantity"),
        F.size(run).cast("long").alias("fill_count"),
        first["trade_id"].alias("first_trade_id"),
        last["trade_id"].alias("last_trade_id"),
        first["price"].alias("first_price"),
        last["price"].alias("last_price"),
        (notional / base_quantity).alias("vwap_price"),
        impact.alias("price_impact_bps"),
    )
