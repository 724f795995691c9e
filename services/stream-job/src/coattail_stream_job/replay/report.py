"""The replay's summary table (terminal) and ``report.html`` (self-contained, inline SVG charts).

Runs in the replay/demo process after the sinks were read back. Inputs are the
``summary.json`` document, the Iceberg tables as rows (``pipeline.read_tables``, as dicts) and the
alert records (``pipeline.read_alert_items``). MOD-008's ``whale_markouts`` rows, when the run
has any, add the whale-alpha cohort table and markout curves. The HTML needs no network: no scripts,
no fonts, no CDN. Rows that come from synthetic input (``synthetic`` maps a venue to
its synthetic symbols) are labelled SYNTHETIC wherever they are shown.

Example::

    print(summary_table(summary, tables, synthetic={"coinbase": ["BTC-USD"]}))
    Path("out/report.html").write_text(html_report(summary, tables, alerts, synthetic={}, notes=[]))
"""

from __future__ import annotations

import html
import json
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from coattail_stream_job.replay.svg import CategoryChart, Chart, Curve, Marker, Series, money, sorted_points

TOP_N = 5
Rows = list[dict[str, Any]]


def _is_synthetic(synthetic: Mapping[str, Sequence[str]], exchange: Any, symbol: Any) -> bool:
    return str(symbol) in synthetic.get(str(exchange), ())


def _tag(synthetic: Mapping[str, Sequence[str]], exchange: Any, symbol: Any) -> str:
    return " [SYNTHETIC]" if _is_synthetic(synthetic, exchange, symbol) else ""


def _time(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if isinstance(value, datetime) else str(value)


def biggest_whales(tables: Mapping[str, Rows], n: int = TOP_N) -> Rows:
    """The ``n`` whale orders with the largest notional."""
    return sorted(tables.get("whale_trades", []), key=lambda r: -float(r["notional"] or 0))[:n]


def widest_spreads(tables: Mapping[str, Rows], n: int = TOP_N) -> Rows:
    """The ``n`` windows with the widest cross-venue spread."""
    return sorted(tables.get("exchange_spreads", []), key=lambda r: -float(r["spread_pct"] or 0))[:n]


def strongest_flows(tables: Mapping[str, Rows], n: int = TOP_N) -> Rows:
    """The ``n`` flow-imbalance windows (MOD-004) with the largest net flow z-score in size (scored first)."""
    rows = tables.get("flow_imbalance", [])
    return sorted(rows, key=lambda r: (r["net_flow_z"] is None, -abs(float(r["net_flow_z"] or 0)), r["window_start"]))[
        :n
    ]


def largest_sequences(tables: Mapping[str, Rows], n: int = TOP_N) -> Rows:
    """The ``n`` split-order sequences (MOD-005) with the largest total notional."""
    rows = tables.get("split_order_sequences", [])
    return sorted(rows, key=lambda r: (-float(r["total_notional"]), r["sequence_start"]))[:n]


def highest_z_scores(tables: Mapping[str, Rows], n: int = TOP_N) -> Rows:
    """The ``n`` volume windows with the highest z-score (windows without one are skipped)."""
    scored = [r for r in tables.get("volume_aggregates", []) if r.get("z_score") is not None]
    return sorted(scored, key=lambda r: -float(r["z_score"]))[:n]


class Cohort(NamedTuple):
    """A MOD-008 whale-alpha cohort: markouts pool per venue, instrument, taker side and notional bucket."""

    exchange: str
    symbol: str
    side: str
    bucket: str


@dataclass(frozen=True)
class MarkoutMean:
    """A cohort's mean return at one horizon over this run's markouts with a return, in bps."""

    horizon_seconds: int
    n: int
    mean_bps: float
    std_error_bps: float | None
    """Sample standard deviation / sqrt(n); None below n = 2."""


@dataclass(frozen=True)
class CohortHorizon:
    """A cohort at one horizon (> 0): MOD-008's rolling statistics as its last markout of the run left them."""

    cohort: Cohort
    horizon_seconds: int
    last: Mapping[str, Any]
    """The latest ``whale_markouts`` row: by ``horizon_end``, then ``order_time``, then ``first_trade_id``."""
    markouts_in_run: int
    """This run's rows of the cohort at the horizon with a return (``return_bps`` not null)."""


def _text(value: Any) -> str:
    return "n/a" if value is None else str(value)


def _cohort(row: Mapping[str, Any]) -> Cohort:
    return Cohort(_text(row["exchange"]), _text(row["symbol"]), _text(row["side"]), _text(row["notional_bucket"]))


def horizon_label(seconds: int) -> str:
    """A markout horizon as shown: ``entry`` for 0, else whole hours, minutes or seconds.

    >>> [horizon_label(s) for s in (0, 45, 60, 300, 900, 3600, 5400)]
    ['entry', '45s', '1m', '5m', '15m', '1h', '90m']
    """
    if seconds == 0:
        return "entry"
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    return f"{seconds // 60}m" if seconds % 60 == 0 else f"{seconds}s"


def markout_curves(tables: Mapping[str, Rows]) -> dict[Cohort, list[MarkoutMean]]:
    """Per cohort (sorted), its mean return per horizon (ascending; entry rows are horizon 0, return 0).

    Computed from this run's ``return_bps`` (null returns skipped), not from the ``cohort_*``
    columns; a cohort or horizon without a return has no entry.
    """
    returns: dict[Cohort, dict[int, list[float]]] = {}
    for r in tables.get("whale_markouts", []):
        if r["return_bps"] is not None:
            by_horizon = returns.setdefault(_cohort(r), {})
            by_horizon.setdefault(int(r["horizon_seconds"]), []).append(float(r["return_bps"]))
    return {
        cohort: [
            MarkoutMean(
                horizon,
                len(values),
                statistics.fmean(values),
                statistics.stdev(values) / math.sqrt(len(values)) if len(values) >= 2 else None,
            )
            for horizon, values in sorted(by_horizon.items())
        ]
        for cohort, by_horizon in sorted(returns.items())
    }


def _trade_id_order(trade_id: str | None) -> tuple[bool, int, str]:
    """Numbered trade ids first, by number (exchanges number a product's trades consecutively), then the rest."""
    if trade_id is not None and trade_id.isascii() and trade_id.isdigit():
        return False, int(trade_id), trade_id
    return True, 0, trade_id or ""


def _markout_order(row: Mapping[str, Any]) -> tuple[datetime, datetime, tuple[bool, int, str]]:
    return row["horizon_end"], row["order_time"], _trade_id_order(row["first_trade_id"])


def cohort_horizons(tables: Mapping[str, Rows]) -> list[CohortHorizon]:
    """Every (cohort, horizon > 0) of ``whale_markouts``, sorted by cohort then horizon.

    ``last`` is the latest row that carries cohort statistics (a markout without an entry price
    carries none), or the latest row when none does."""
    rows: dict[tuple[Cohort, int], Rows] = {}
    for r in tables.get("whale_markouts", []):
        if int(r["horizon_seconds"]) > 0:
            rows.setdefault((_cohort(r), int(r["horizon_seconds"])), []).append(r)
    return [
        CohortHorizon(
            cohort,
            horizon,
            max(group, key=lambda r: (r["cohort_n"] is not None, _markout_order(r))),
            sum(r["return_bps"] is not None for r in group),
        )
        for (cohort, horizon), group in sorted(rows.items())
    ]


def _fixed(value: Any, spec: str) -> str:
    return "n/a" if value is None else format(float(value), spec)


def _alpha_rows(tables: Mapping[str, Rows], synthetic: Mapping[str, Sequence[str]]) -> list[list[str]]:
    return [
        [
            c.cohort.exchange,
            c.cohort.symbol + _tag(synthetic, c.cohort.exchange, c.cohort.symbol),
            c.cohort.side,
            c.cohort.bucket,
            horizon_label(c.horizon_seconds),
            _text(c.last["cohort_n"]),
            _fixed(c.last["cohort_mean_bps"], "+.2f"),
            _fixed(c.last["cohort_std_bps"], ".2f"),
            _fixed(c.last["cohort_t"], "+.2f"),
            _fixed(c.last["cohort_hit_rate"], ".1%"),
            str(c.markouts_in_run),
        ]
        for c in cohort_horizons(tables)
    ]


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    body = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return [line, "  ".join("-" * w for w in widths), *body] if rows else [line, "  (none)"]


def summary_sections(
    summary: Mapping[str, Any], tables: Mapping[str, Rows], synthetic: Mapping[str, Sequence[str]]
) -> list[tuple[str, list[str], list[list[str]]]]:
    """``(title, headers, rows)`` of every section of the summary, shared by the terminal and HTML forms."""
    events = summary["events"]
    counts = [
        ["published to Kinesis", str(events["published"])],
        ["read by the stream job", str(events["read"])],
        ["valid (raw_trades rows)", str(events["valid"])],
        ["invalid (dead letters)", str(events["invalid"])],
        *[[f"  invalid: {rule}", str(n)] for rule, n in events["invalid_by_rule"].items()],
        *[[f"  warning: {rule}", str(n)] for rule, n in events["warnings_by_rule"].items()],
        *[[f"late rows: {query}", str(n)] for query, n in summary["late_rows"].items() if n],
        *[[f"Iceberg {name}", f"{n} rows"] for name, n in summary["table_rows"].items()],
    ]
    alerts = [
        [module, severity, str(n)]
        for module, by_severity in summary["alerts"]["by_module"].items()
        for severity, n in by_severity.items()
    ]
    whales = [
        [
            _time(r["order_time"]),
            f"{r['exchange']} {r['symbol']}{_tag(synthetic, r['exchange'], r['symbol'])}",
            str(r["side"]),
            money(float(r["notional"])),
            str(r["fill_count"]),
            f"{float(r['price_impact_bps'] or 0):+.1f}",
        ]
        for r in biggest_whales(tables)
    ]
    spreads = [
        [
            _time(r["window_start"]),
            str(r["symbol"]),
            f"{r['exchange_a']} {r['symbol_a']} / {r['exchange_b']} {r['symbol_b']}"
            + (
                ""
                if not (
                    _tag(synthetic, r["exchange_a"], r["symbol_a"]) or _tag(synthetic, r["exchange_b"], r["symbol_b"])
                )
                else " [SYNTHETIC]"
            ),
            f"{float(r['spread_pct']):.3f}%",
            f"{float(r['premium_bps']):+.1f}",
        ]
        for r in widest_spreads(tables)
    ]
    z_scores = [
        [
            _time(r["window_start"]),
            f"{r['exchange']} {r['symbol']}{_tag(synthetic, r['exchange'], r['symbol'])}",
            money(float(r["quote_volume"])),
            f"{float(r['z_score']):.2f}",
            str(r["baseline_size"]),
        ]
        for r in highest_z_scores(tables)
    ]
    sections = [
        ("Events", ["what", "count"], counts),
        ("Alerts by module and severity", ["module", "severity", "alerts"], alerts),
        ("Biggest whale orders", ["order time (UTC)", "venue", "taker", "notional", "fills", "impact bps"], whales),
        ("Widest spreads", ["window (UTC)", "instrument", "venues", "spread", "premium bps"], spreads),
        ("Highest volume z-scores", ["window (UTC)", "venue", "quote volume", "z", "baseline windows"], z_scores),
    ]
    if tables.get("flow_imbalance"):
        flows = [
            [
                _time(r["window_start"]),
                f"{r['exchange']} {r['symbol']}{_tag(synthetic, r['exchange'], r['symbol'])}",
                money(float(r["buy_quote_volume"])),
                money(float(r["sell_quote_volume"])),
                f"{float(r['imbalance']):+.2f}",
                _fixed(r["net_flow_z"], "+.2f"),
                str(r["baseline_size"]),
            ]
            for r in strongest_flows(tables)
        ]
        headers = ["window (UTC)", "venue", "buy", "sell", "imbalance", "net flow z", "baseline windows"]
        sections.append(("Strongest taker flow imbalances", headers, flows))
    if tables.get("split_order_sequences"):
        sequences = [
            [
                _time(r["sequence_start"]),
                _time(r["sequence_end"]),
                f"{r['exchange']} {r['symbol']}{_tag(synthetic, r['exchange'], r['symbol'])}",
                str(r["side"]),
                str(r["clip_count"]),
                f"{float(r['clip_base_quantity']):g}",
                money(float(r["total_notional"])),
                f"{float(r['interval_mean_seconds']):.1f} s",
                f"{float(r['interval_cv']):.2f}",
                "yes" if r["regular"] else "no",
                f"{float(r['price_drift_bps']):+.1f}",
            ]
            for r in largest_sequences(tables)
        ]
        headers = ["start (UTC)", "end (UTC)", "venue", "side", "clips", "clip size", "total", "interval", "cv"]
        sections.append(("Split-order sequences", [*headers, "regular", "drift bps"], sequences))
    if tables.get("lead_lag"):
        lead_lag = [
            [
                _time(r["window_end"]),
                str(r["symbol"]),
                f"{r['exchange_a']} {r['symbol_a']} / {r['exchange_b']} {r['symbol_b']}",
                f"{float(r['lag_seconds']):+g} s",
                str(r["leader"] or "none"),
                f"{float(r['correlation_at_lag']):+.3f}",
                f"{float(r['correlation_at_zero']):+.3f}",
                "yes" if r["significant"] else "no",
            ]
            for r in sorted(tables["lead_lag"], key=lambda r: (r["window_end"], r["symbol"], r["exchange_a"]))
        ]
        headers = ["window end (UTC)", "instrument", "legs", "lag k*", "leader", "rho(k*)", "rho(0)", "significant"]
        sections.append(("Lead-lag between venues", headers, lead_lag))
    if tables.get("whale_markouts"):
        headers = ["exchange", "symbol", "side", "bucket", "horizon", "n", "mean bps", "std bps", "t", "hit rate"]
        sections.append(("Whale alpha: cohorts", [*headers, "markouts in run"], _alpha_rows(tables, synthetic)))
    return sections


def summary_table(
    summary: Mapping[str, Any], tables: Mapping[str, Rows], synthetic: Mapping[str, Sequence[str]]
) -> str:
    """The summary as plain-text tables for the terminal."""
    lines: list[str] = []
    for title, headers, rows in summary_sections(summary, tables, synthetic):
        lines += ["", title, *_table(headers, rows)]
    wall = summary["wall_seconds"]
    lines += ["", "Wall time: " + ", ".join(f"{stage} {seconds:.1f}s" for stage, seconds in wall.items())]
    return "\n".join(lines)


def volume_charts(
    tables: Mapping[str, Rows], alerts: Sequence[Mapping[str, Any]], synthetic: Mapping[str, Sequence[str]]
) -> list[Chart]:
    """One chart per venue symbol: quote volume per window, baseline mean ± 2 std band, spikes (MOD-001 alerts)."""
    charts = []
    spikes = {(a["exchange"], a["symbol"], a["detected_at"]) for a in alerts if a["module_id"] == "MOD-001"}
    keys = sorted({(r["exchange"], r["symbol"]) for r in tables.get("volume_aggregates", [])})
    for exchange, symbol in keys:
        rows = sorted(
            (r for r in tables["volume_aggregates"] if (r["exchange"], r["symbol"]) == (exchange, symbol)),
            key=lambda r: r["window_start"],
        )
        label = f"{exchange} {symbol}{_tag(synthetic, exchange, symbol)}"
        chart = Chart(f"Volume per window: {label}", "quote volume per window", y_format="money")
        charts.append(chart)
        band = [
            (
                r["window_start"],
                max(0.0, r["baseline_mean"] - 2 * r["baseline_std"]),
                r["baseline_mean"] + 2 * r["baseline_std"],
            )
            for r in rows
            if r["baseline_mean"] is not None and r["baseline_std"] is not None
        ]
        chart.series.append(Series(label, [(r["window_start"], float(r["quote_volume"])) for r in rows], band))
        for r in rows:
            if (exchange, symbol, r["window_end"].strftime("%Y-%m-%dT%H:%M:%S.%fZ")) in spikes:
                title = f"{label} {_time(r['window_start'])}: {money(r['quote_volume'])}, z={r['z_score']:.2f}"
                chart.markers.append(Marker(label, r["window_start"], float(r["quote_volume"]), 6.0, title))
    return charts


def whale_chart(tables: Mapping[str, Rows], synthetic: Mapping[str, Sequence[str]]) -> Chart:
    """Whale orders over time; marker area grows with notional."""
    chart = Chart("Whale orders", "order notional", y_format="money")
    for r in sorted(tables.get("whale_trades", []), key=lambda r: (r["exchange"], r["symbol"], r["order_time"])):
        label = f"{r['exchange']} {r['symbol']}{_tag(synthetic, r['exchange'], r['symbol'])}"
        notional = float(r["notional"])
        title = f"{label} {_time(r['order_time'])} taker {r['side']} {money(notional)} in {r['fill_count']} fills"
        chart.markers.append(Marker(label, r["order_time"], notional, 3 + 9 * min(1.0, (notional / 1e6) ** 0.5), title))
    return chart


def spread_chart(tables: Mapping[str, Rows], synthetic: Mapping[str, Sequence[str]]) -> Chart:
    """Spread (percent of mid) per window for each venue pair of each instrument."""
    chart = Chart("Cross-venue spread per window", "spread, % of mid", y_format="percent")
    pairs: dict[str, list[tuple[datetime, float]]] = {}
    for r in tables.get("exchange_spreads", []):
        synthetic_leg = _is_synthetic(synthetic, r["exchange_a"], r["symbol_a"]) or _is_synthetic(
            synthetic, r["exchange_b"], r["symbol_b"]
        )
        label = f"{r['symbol']} {r['exchange_a']}/{r['exchange_b']}" + (" [SYNTHETIC]" if synthetic_leg else "")
        pairs.setdefault(label, []).append((r["window_start"], float(r["spread_pct"])))
    chart.series = [Series(label, sorted_points(points)) for label, points in sorted(pairs.items())]
    return chart


def alpha_chart(tables: Mapping[str, Rows], synthetic: Mapping[str, Sequence[str]]) -> CategoryChart:
    """Markout curves: per cohort, its mean return by horizon in this run, band mean ± 1 standard error."""
    curves = markout_curves(tables)
    horizons = sorted({m.horizon_seconds for means in curves.values() for m in means})
    column = {horizon: index for index, horizon in enumerate(horizons)}
    chart = CategoryChart(
        "Whale alpha: markout curves per cohort",
        [horizon_label(horizon) for horizon in horizons],
        "horizon after the whale order",
        "mean return, bps (± 1 s.e.)",
    )
    for cohort, means in curves.items():
        label = f"{' '.join(cohort)}{_tag(synthetic, cohort.exchange, cohort.symbol)}"
        points = [(column[m.horizon_seconds], m.mean_bps) for m in means]
        band = [
            (column[m.horizon_seconds], m.mean_bps - m.std_error_bps, m.mean_bps + m.std_error_bps)
            for m in means
            if m.std_error_bps is not None
        ]
        chart.curves.append(Curve(label, points, band))
    return chart


STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:960px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border-bottom:1px solid #ddd;padding:3px 10px;text-align:left}
th{background:#f3f3f3}.synthetic{background:#fff4d6;border:1px solid #e0b64c;padding:.6em 1em}
svg{width:100%;height:auto;margin-bottom:1.5em}code{background:#f3f3f3;padding:0 3px}
"""


def html_report(
    summary: Mapping[str, Any],
    tables: Mapping[str, Rows],
    alerts: Sequence[Mapping[str, Any]],
    *,
    synthetic: Mapping[str, Sequence[str]],
    notes: Sequence[str],
) -> str:
    """The self-contained HTML report (summary tables, charts, synthetic-input notes)."""
    esc = html.escape
    body = [
        "<h1>Coat Tail Capital — replay report</h1>",
        f"<p>Recordings: {', '.join(f'<code>{esc(r)}</code>' for r in summary['recordings'])}. "
        f"Configuration: <code>{esc(summary['config'])}</code>. All times UTC.</p>",
    ]
    if notes:
        body.append('<div class="synthetic"><strong>SYNTHETIC input in this run.</strong><ul>')
        body += [f"<li>{esc(note)}</li>" for note in notes]
        body.append("</ul>Rows and series from it are labelled [SYNTHETIC].</div>")
    for title, headers, rows in summary_sections(summary, tables, synthetic):
        body.append(f"<h2>{esc(title)}</h2><table><tr>{''.join(f'<th>{esc(h)}</th>' for h in headers)}</tr>")
        body += [f"<tr>{''.join(f'<td>{esc(c)}</td>' for c in row)}</tr>" for row in rows]
        body.append("</table>")
    body.append("<h2>Per-window volume, baseline band (mean ± 2 std) and spikes</h2>")
    body += [chart.render() for chart in volume_charts(tables, alerts, synthetic)]
    body.append("<h2>Whale orders over time (marker size grows with notional)</h2>")
    body.append(whale_chart(tables, synthetic).render())
    body.append("<h2>Spreads per window</h2>")
    body.append(spread_chart(tables, synthetic).render())
    if tables.get("whale_markouts"):
        body.append("<h2>Whale alpha: markout curves per cohort (mean return, band ± 1 standard error)</h2>")
        body.append(alpha_chart(tables, synthetic).render())
    body.append(f"<h2>Run</h2><pre>{esc(json.dumps(summary['wall_seconds'], indent=2))}</pre>")
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Coat Tail Capital replay report</title>'
        f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>\n"
    )
