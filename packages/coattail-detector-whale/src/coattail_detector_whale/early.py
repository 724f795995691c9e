"""MOD-002's early path: which orders of one micro-batch its own trades prove complete.

The stateful query emits an order once the watermark has passed its trade time, one
micro-batch after the batch that read it at the earliest. Exchanges number an
instrument's trades consecutively (Binance trade ids, Coinbase trade ids per product), and
a shard carries an instrument's trades in order, so one batch can already prove an order
whole: its fills have consecutive ids and one group key (side, trade time, taker order id),
and the trades just before its first fill (id - 1) and just after its last fill (id + 1)
are in the batch and belong to other orders. Such an order is exactly the row the stateful
query emits later (``orders`` builds both from the same fills in the same order). Anything
else is left to the stateful query:

- the instrument's last order of the batch (no successor yet): carried to the next batch
  with the trade before it, which then proves it (``CARRY``);
- every order of an instrument with a fill without an integer id in the batch (the stateful
  query sorts such fills after the numbered fills of their group, which no batch can
  bound); such an instrument carries nothing either;
- an order whose taker order id also appears on other fills of the batch (Coinbase fills
  of one order are expected to be consecutive; if not, the stateful query's row wins);
- an id gap next to the order (a missing trade, a fill skipped as invalid or without a
  side), a duplicated id, the first trades after a restart (the carry lives in the driver).

The early path does not apply the stateful query's watermark itself; the stream job's
``EarlyLedger`` (ADR-029) keeps the two paths in agreement: the early query puts only orders
after the stateful query's latest watermark, and the stateful batch whose watermark passes
such an order records it (``WhaleDetector.output_of_alerts``) in ``whale_trades`` and
``alerts`` even when its fills came late for the stateful query, or only partly in time.

One aggregation per instrument, in one partition, and array expressions over its fills
sorted by id (no shuffle, no window sorts). Builds plans on the driver (inside the early query's
``foreachBatch``); executors run them.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from coattail_detector_whale.orders import GROUP_KEY, fill_struct, trade_number

ENTRIES = "_entries"
"""Per instrument: its numbered fills as ``struct(no, key, fill, trade)``, sorted by trade id."""
PROVEN = "_proven"
"""Per instrument: its proven orders above the minimum notional, ``struct(side, timestamp, taker_order_id, fills)``."""
CARRY = "_carry"
"""Per instrument: the ``trade`` rows the next batch needs (its last order and the trade before it)."""
_ORDER_KEY = GROUP_KEY[2:]  # side, trade time, taker order id: exchange and symbol are the instrument


def _at(entries: Column, position: Column) -> Column:
    """The entry at 1-based ``position`` (null outside the array)."""
    return F.get(entries, position - 1)


def _adjacent(entries: Column, position: Column) -> Column:
    """Whether the entry at ``position`` has the id after the one before it (false at either end)."""
    return F.coalesce(_at(entries, position)["no"] == _at(entries, position - 1)["no"] + 1, F.lit(False))


class EarlyOrders:
    """The early path's Spark expressions for input ``columns``, built once and applied to every batch.

    Building them costs hundreds of py4j calls (about 0.3 s per micro-batch on the driver);
    unresolved column expressions can be reused on every batch with the same columns.
    """

    def __init__(self, columns: Sequence[str], min_notional: float) -> None:
        self.columns = tuple(columns)
        trade_no = trade_number()
        entry = F.struct(
            trade_no.alias("no"),
            F.struct(*(F.col(name) for name in _ORDER_KEY)).alias("key"),
            fill_struct().alias("fill"),
            F.struct(*(F.col(name) for name in columns)).alias("trade"),
        )
        # Arrays come straight out of the aggregation and every later array is built without a
        # lambda reading another computed array: Catalyst inlines projections into lambdas, which
        # would recompute such an array once per element (quadratic).
        self._aggregates = (
            F.max(trade_no.isNull()).alias("_unnumbered"),
            F.array_sort(F.collect_list(F.when(trade_no.isNotNull(), entry))).alias(ENTRIES),
        )
        self._per_instrument = _per_instrument(F.col(ENTRIES), F.col("_unnumbered"), min_notional)
        self._order = tuple(F.col(f"_order.{name}").alias(name) for name in (*_ORDER_KEY, "fills"))
        self._explode = F.explode(PROVEN).alias("_order")
        self._inline = F.inline(CARRY)

    def instruments(self, fills: DataFrame) -> DataFrame:
        """One row per instrument of ``fills``: ``exchange``, ``symbol``, ``PROVEN`` and ``CARRY``.

        ``fills``: the fills MOD-002 evaluates, one static batch (with any carry), any order,
        with exactly ``columns``. ``PROVEN``: the proven orders of at least ``min_notional``
        (quote volume), each a struct of the order key (``side``, trade time,
        ``taker_order_id``) and its ``fills`` (``fill_struct`` array in fill order).
        ``CARRY``: structs of ``fills``' columns.
        """
        if tuple(fills.columns) != self.columns:
            raise ValueError(f"early path built for columns {list(self.columns)}, got {fills.columns}")
        # One partition: an early batch is small (a trigger's worth of trades), and a single
        # partition needs no shuffle for the grouping (about a third of the batch's Spark time).
        return fills.coalesce(1).groupBy("exchange", "symbol").agg(*self._aggregates).select(*self._per_instrument)

    def orders(self, instruments: DataFrame) -> DataFrame:
        """One row per proven order of ``instruments``: ``GROUP_KEY`` columns and ``fills``."""
        return instruments.select("exchange", "symbol", self._explode).select("exchange", "symbol", *self._order)

    def carry(self, instruments: DataFrame) -> DataFrame:
        """The carried trades of ``instruments``, as rows with ``columns``."""
        return instruments.select(self._inline)


def _per_instrument(entries: Column, unnumbered: Column, min_notional: float) -> tuple[Column, ...]:
    """``exchange``, ``symbol``, ``PROVEN`` and ``CARRY`` from an instrument's sorted ``entries``."""
    count = F.size(entries)

    def continues(position: Column) -> Column:
        """The entry at ``position`` belongs to the order of the one before it."""
        same_key = _at(entries, position)["key"].eqNullSafe(_at(entries, position - 1)["key"])
        return _adjacent(entries, position) & same_key

    def own(order: Column) -> Column:
        return F.slice(entries, order["first"], order["last"] - order["first"] + 1)

    def taker_elsewhere(order: Column) -> Column:
        """Its taker order id is on a fill outside it (a scan of the instrument: candidates only)."""
        taker = _at(entries, order["first"])["key"]["taker_order_id"]
        return taker.isNotNull() & F.exists(
            entries,
            lambda e: (
                (e["key"]["taker_order_id"] == taker)
                & ((e["no"] < _at(entries, order["first"])["no"]) | (e["no"] > _at(entries, order["last"])["no"]))
            ),
        )

    def candidate(order: Column) -> Column:
        proven = _adjacent(entries, order["first"]) & _adjacent(entries, order["last"] + 1)
        notional = F.aggregate(own(order), F.lit(0.0), lambda total, e: total + e["fill"]["quote_volume"])
        return F.when(proven & (notional >= F.lit(min_notional)), ~taker_elsewhere(order)).otherwise(F.lit(False))

    def whole(order: Column) -> Column:
        key = _at(entries, order["first"])["key"]
        return F.struct(
            *(key[name].alias(name) for name in _ORDER_KEY),
            F.transform(own(order), lambda e: e["fill"]).alias("fills"),
        )

    positions = F.sequence(F.lit(1), count)
    orders = F.arrays_zip(
        F.filter(positions, lambda p: ~continues(p)).alias("first"),
        F.filter(positions, lambda p: ~continues(p + 1)).alias("last"),
    )
    last_first = F.aggregate(positions, F.lit(1), lambda found, p: F.when(continues(p), found).otherwise(p))
    carry_from = F.greatest(last_first - 1, F.lit(1))
    carried = F.transform(F.slice(entries, carry_from, count - carry_from + 1), lambda e: e["trade"])
    return (
        F.col("exchange"),
        F.col("symbol"),
        F.when(unnumbered, F.array()).otherwise(F.transform(F.filter(orders, candidate), whole)).alias(PROVEN),
        F.when(unnumbered | (count == 0), F.array()).otherwise(carried).alias(CARRY),
    )
