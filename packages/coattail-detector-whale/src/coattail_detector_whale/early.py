"""MOD-002's early path: which orders of one micro-batch its own trades prove complete.

The stateful query emits an order once the watermark has passed its trade time, one
micro-batch after the batch that read it at the earliest. Exchanges number an
instrument's trades consecutively (Binance trade ids, Coinbase trade ids per product), and
a shard carries an instrument's trades in order, so one batch can already prove an order
whole: its fills have consecutive ids and one group key (exchange, symbol, side, trade
time, taker order id), the trade just before its first fill (id - 1) and the one just after
its last fill (id + 1) are in the batch and belong to other orders. Such an order is
exactly the row the stateful query emits later (``orders`` builds both); anything else is
left to the stateful query:

- the instrument's last order of the batch (no successor yet): carried to the next batch
  with the trade before it, which then proves it (``CARRY`` rows);
- fills without an integer id, in any order sharing their group key: the stateful query
  sorts them after the numbered fills of the group, which no single batch can bound;
- a taker order id that appears in more than one run of the batch (Coinbase fills of one
  order are expected to be consecutive; if not, the stateful query's single row wins);
- an id gap next to the order (a missing trade, a fill skipped as invalid or without a
  side), a duplicated id, the first trades after a restart (the carry lives in the driver).

The early path does not apply the stateful query's watermark: an order the stateful query
drops as late (all of its fills arrived after the watermark passed its trade time) can
still alert early; ``whale_trades`` and the ``alerts`` table then lack it. With trades
read in order from a shard this needs a producer that held them back for longer than
``watermark_delay_seconds``.

Builds plans on the driver (inside the early query's ``foreachBatch``); executors run them.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from coattail_detector_whale.orders import GROUP_KEY, trade_number

RUN = "_run"
"""Run number within the instrument (1, 2, ...), in trade id order."""
UNPROVEN = "_unproven"
"""True on every fill of an order this batch cannot prove complete."""
CARRY = "_carry"
"""True on the fills the next batch needs: the instrument's last run and the trade before it."""
_NO = "_trade_no"
_KEY = "_group_key"
_STARTS = "_starts"
_OPEN = "_open"
_LAST_RUN = "_last_run"
_BLOCKED = "_blocked"
_INSTRUMENT = ("exchange", "symbol")


def _follows(this: Column, other: Column) -> Column:
    """Whether trade number ``this`` is ``other`` + 1 (false when either is null)."""
    return F.coalesce(this == other + 1, F.lit(False))


def mark_runs(fills: DataFrame) -> DataFrame:
    """``fills`` (one static batch, any order) with ``RUN``, ``UNPROVEN`` and ``CARRY`` added.

    Fills without an integer trade id get ``RUN`` null, are unproven and are not carried;
    they also block the early alert of every run sharing their group key.
    """
    instrument = Window.partitionBy(*_INSTRUMENT)
    in_id_order = instrument.orderBy(_NO)
    key = F.struct(*(F.col(name) for name in GROUP_KEY[2:]))
    unnumbered_in_key = F.max(F.col(_NO).isNull()).over(Window.partitionBy(*GROUP_KEY))
    numbered = (
        fills.withColumn(_NO, trade_number())
        .withColumn(_BLOCKED, unnumbered_in_key)
        .where(F.col(_NO).isNotNull())
        .withColumn(_KEY, key)
    )
    previous_no, next_no = F.lag(_NO).over(in_id_order), F.lead(_NO).over(in_id_order)
    adjacent_before = _follows(F.col(_NO), previous_no)
    same_as_previous = F.lag(_KEY).over(in_id_order).eqNullSafe(F.col(_KEY))
    runs = numbered.select(
        "*",
        (~adjacent_before | ~same_as_previous).alias(_STARTS),
        # a run's inner fills have both neighbours; only its first and last can miss one
        (~adjacent_before | ~_follows(next_no, F.col(_NO))).alias(_OPEN),
    ).withColumn(RUN, F.sum(F.col(_STARTS).cast("long")).over(in_id_order.rowsBetween(Window.unboundedPreceding, 0)))
    run = Window.partitionBy(*_INSTRUMENT, RUN)
    split_order = F.col("taker_order_id").isNotNull() & (
        F.size(F.collect_set(RUN).over(Window.partitionBy(*_INSTRUMENT, "taker_order_id"))) > 1
    )
    marked = runs.select(
        *fills.columns,
        _NO,
        RUN,
        (F.max(F.col(_OPEN) | F.col(_BLOCKED)).over(run) | split_order).alias(UNPROVEN),
        F.max(RUN).over(instrument).alias(_LAST_RUN),
    )
    last_run_first = F.min(F.when(F.col(RUN) == F.col(_LAST_RUN), F.col(_NO))).over(instrument)
    return marked.select(*fills.columns, RUN, UNPROVEN, (F.col(_NO) >= last_run_first - 1).alias(CARRY))
