"""Inline SVG charts for the replay report: one numeric value on y, no dependencies.

Runs in the demo process after the replay. Times are UTC ``datetime``s, shown as UTC HH:MM.
A ``Chart`` (time on x) takes series (lines, optional bands) and points (markers); a
``CategoryChart`` (evenly spaced categories on x, e.g. markout horizons) takes curves
(lines, optional bands). Each scales them into a fixed viewport and renders one ``<svg>``
element; colours come from a fixed palette so the same series keeps its colour across charts.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
WIDTH, HEIGHT = 900, 300
LEFT, RIGHT, TOP, BOTTOM = 80, 170, 20, 40
CATEGORY_RIGHT = 260
"""Legend width of a ``CategoryChart``: its labels (venue, symbol, side, bucket) are longer."""


@dataclass
class Series:
    """A line over time, optionally with a band (low, high) drawn under it."""

    label: str
    points: list[tuple[datetime, float]]
    band: list[tuple[datetime, float, float]] = field(default_factory=list)


@dataclass
class Marker:
    """One point drawn as a circle of ``radius`` pixels; ``title`` shows on hover."""

    label: str
    at: datetime
    value: float
    radius: float = 4.0
    title: str = ""


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        return [low]
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return [k * step for k in range(math.ceil(low / step), math.floor(high / step) + 1)]


TIME_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400)
"""Time tick spacings in seconds (aligned to the epoch, so minute ticks fall on whole minutes)."""


def _time_ticks(low: float, high: float, count: int = 8) -> list[float]:
    step = next((s for s in TIME_STEPS if (high - low) / s <= count), TIME_STEPS[-1])
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step) + 1)]


def _frame(title: str, plot_w: float, plot_h: float) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{html.escape(title)}">',
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="#fafafa" stroke="#ccc"/>',
    ]


def _empty(parts: list[str]) -> str:
    parts.append(f'<text x="{LEFT + 10}" y="{TOP + 30}" fill="#666">no rows in this run</text></svg>')
    return "".join(parts)


def _y_axis(
    ticks: Sequence[float], y: Callable[[float], float], plot_w: float, label: Callable[[float], str], title: str
) -> list[str]:
    parts = []
    for tick in ticks:
        parts.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#eee"/>')
        parts.append(
            f'<text x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" font-size="11">'
            f"{html.escape(label(tick))}</text>"
        )
    middle = TOP + (HEIGHT - TOP - BOTTOM) / 2
    parts.append(
        f'<text x="14" y="{middle}" transform="rotate(-90 14 {middle})" '
        f'text-anchor="middle" font-size="12">{html.escape(title)}</text>'
    )
    return parts


def _colours(labels: Sequence[str]) -> dict[str, str]:
    return {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(labels)}


def _legend(colour: dict[str, str], left: float) -> list[str]:
    parts = []
    for index, (label, fill) in enumerate(colour.items()):
        ly = TOP + 12 + index * 16
        parts.append(f'<rect x="{left + 10}" y="{ly - 9}" width="10" height="10" fill="{fill}"/>')
        parts.append(f'<text x="{left + 26}" y="{ly}" font-size="11">{html.escape(label)}</text>')
    return parts


def money(value: float) -> str:
    """``$1.2M``-style label."""
    for bound, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= bound:
            return f"${value / bound:.1f}{suffix}"
    return f"${value:.0f}"


@dataclass
class Chart:
    """One chart: title, y-axis label and formatter, series and markers."""

    title: str
    y_label: str
    series: list[Series] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    y_format: str = "number"
    """``number``, ``money`` or ``percent``."""

    def _format(self, value: float) -> str:
        if self.y_format == "money":
            return money(value)
        if self.y_format == "percent":
            return f"{value:.2f}%"
        return f"{value:g}"

    def _bounds(self) -> tuple[float, float, float, float]:
        times = [p[0].timestamp() for s in self.series for p in s.points] + [m.at.timestamp() for m in self.markers]
        values = [p[1] for s in self.series for p in s.points] + [m.value for m in self.markers]
        values += [v for s in self.series for _, low, high in s.band for v in (low, high)]
        if not times:
            return 0.0, 1.0, 0.0, 1.0
        low = min(0.0, min(values))
        high = max(values) * 1.05 or 1.0
        return min(times), max(max(times), min(times) + 1), low, high

    def render(self) -> str:
        """The chart as one ``<svg>`` element (an empty-state note when there is nothing to draw)."""
        t0, t1, v0, v1 = self._bounds()
        plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

        def x(at: datetime) -> float:
            return LEFT + (at.timestamp() - t0) / (t1 - t0) * plot_w

        def y(value: float) -> float:
            return TOP + plot_h - (value - v0) / (v1 - v0) * plot_h

        parts = _frame(self.title, plot_w, plot_h)
        if not self.series and not self.markers:
            return _empty(parts)
        parts += _y_axis(_ticks(v0, v1), y, plot_w, self._format, self.y_label)
        for tick in _time_ticks(t0, t1):
            label = datetime.fromtimestamp(tick, tz=UTC).strftime("%H:%M:%S" if t1 - t0 < 600 else "%H:%M")
            px = LEFT + (tick - t0) / (t1 - t0) * plot_w
            parts.append(
                f'<text x="{px:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" font-size="11">{label}</text>'
            )
        colour = _colours(list(dict.fromkeys([s.label for s in self.series] + [m.label for m in self.markers])))
        for series in self.series:
            if series.band:
                upper = " ".join(f"{x(at):.1f},{y(high):.1f}" for at, _, high in series.band)
                lower = " ".join(f"{x(at):.1f},{y(low):.1f}" for at, low, _ in reversed(series.band))
                parts.append(f'<polygon points="{upper} {lower}" fill="{colour[series.label]}" fill-opacity="0.12"/>')
            path = " ".join(f"{x(at):.1f},{y(value):.1f}" for at, value in series.points)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour[series.label]}" stroke-width="1.5"/>')
        for marker in self.markers:
            parts.append(
                f'<circle cx="{x(marker.at):.1f}" cy="{y(marker.value):.1f}" r="{marker.radius:.1f}" '
                f'fill="{colour[marker.label]}" fill-opacity="0.7" stroke="#333" stroke-width="0.5">'
                f"<title>{html.escape(marker.title)}</title></circle>"
            )
        parts += _legend(colour, WIDTH - RIGHT)
        parts.append("</svg>")
        return "".join(parts)


@dataclass
class Curve:
    """A line over a ``CategoryChart``'s categories (x: category index), optionally with a band (index, low, high)."""

    label: str
    points: list[tuple[int, float]]
    band: list[tuple[int, float, float]] = field(default_factory=list)


def _band_runs(band: Sequence[tuple[int, float, float]]) -> list[list[tuple[int, float, float]]]:
    """``band`` split into runs of consecutive categories: a band is not drawn across a category without one."""
    runs: list[list[tuple[int, float, float]]] = []
    for point in sorted(band):
        if runs and point[0] == runs[-1][-1][0] + 1:
            runs[-1].append(point)
        else:
            runs.append([point])
    return runs


@dataclass
class CategoryChart:
    """One chart: evenly spaced categories on x (labels in order), curves on y, a line at y = 0.

    Values are shown to 2 decimals on hover. A curve's band is drawn over each run of
    consecutive categories that have one; a category alone in its run gets an error bar.
    """

    title: str
    categories: list[str]
    x_label: str
    y_label: str
    curves: list[Curve] = field(default_factory=list)

    def _bounds(self) -> tuple[float, float]:
        values = [0.0, *(value for curve in self.curves for _, value in curve.points)]
        values += [v for curve in self.curves for _, low, high in curve.band for v in (low, high)]
        pad = (max(values) - min(values)) * 0.05 or 1.0
        return min(values) - pad, max(values) + pad

    def render(self) -> str:
        """The chart as one ``<svg>`` element (an empty-state note when there is nothing to draw)."""
        v0, v1 = self._bounds()
        plot_w, plot_h = WIDTH - LEFT - CATEGORY_RIGHT, HEIGHT - TOP - BOTTOM

        def x(index: int) -> float:
            return LEFT + (index + 0.5) / len(self.categories) * plot_w

        def y(value: float) -> float:
            return TOP + plot_h - (value - v0) / (v1 - v0) * plot_h

        parts = _frame(self.title, plot_w, plot_h)
        if not self.curves:
            return _empty(parts)
        parts += _y_axis(_ticks(v0, v1), y, plot_w, lambda value: f"{value:g}", self.y_label)
        parts.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y(0):.1f}" y2="{y(0):.1f}" stroke="#999"/>')
        for index, category in enumerate(self.categories):
            parts.append(
                f'<text x="{x(index):.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" font-size="11">'
                f"{html.escape(category)}</text>"
            )
        parts.append(
            f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 6}" text-anchor="middle" font-size="12">'
            f"{html.escape(self.x_label)}</text>"
        )
        colour = _colours(list(dict.fromkeys(curve.label for curve in self.curves)))
        for curve in self.curves:
            fill = colour[curve.label]
            for run in _band_runs(curve.band):
                if len(run) == 1:
                    at, low, high = run[0]
                    parts.append(
                        f'<line x1="{x(at):.1f}" x2="{x(at):.1f}" y1="{y(low):.1f}" y2="{y(high):.1f}" '
                        f'stroke="{fill}" stroke-opacity="0.4" stroke-width="4"/>'
                    )
                    continue
                upper = " ".join(f"{x(at):.1f},{y(high):.1f}" for at, _, high in run)
                lower = " ".join(f"{x(at):.1f},{y(low):.1f}" for at, low, _ in reversed(run))
                parts.append(f'<polygon points="{upper} {lower}" fill="{fill}" fill-opacity="0.12"/>')
            path = " ".join(f"{x(at):.1f},{y(value):.1f}" for at, value in curve.points)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{fill}" stroke-width="1.5"/>')
            for at, value in curve.points:
                title = f"{curve.label} {self.categories[at]}: {value:.2f}"
                parts.append(
                    f'<circle cx="{x(at):.1f}" cy="{y(value):.1f}" r="3" fill="{fill}">'
                    f"<title>{html.escape(title)}</title></circle>"
                )
        parts += _legend(colour, WIDTH - CATEGORY_RIGHT)
        parts.append("</svg>")
        return "".join(parts)


def sorted_points(points: Sequence[tuple[datetime, float]]) -> list[tuple[datetime, float]]:
    """Points in time order."""
    return sorted(points, key=lambda point: point[0])
