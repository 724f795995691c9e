"""Inline SVG charts for the replay report: time on x, one numeric value on y, no dependencies.

Runs in the demo process after the replay. Times are UTC ``datetime``s, shown as UTC HH:MM.
A ``Chart`` takes series (lines, optional bands) and points (markers), scales them into
a fixed viewport and renders one ``<svg>`` element; colours come from a fixed palette so
the same series keeps its colour across charts.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
WIDTH, HEIGHT = 900, 300
LEFT, RIGHT, TOP, BOTTOM = 80, 170, 20, 40


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
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step) + 1)]


TIME_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400)
"""Time tick spacings in seconds (aligned to the epoch, so minute ticks fall on whole minutes)."""


def _time_ticks(low: float, high: float, count: int = 8) -> list[float]:
    step = next((s for s in TIME_STEPS if (high - low) / s <= count), TIME_STEPS[-1])
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step) + 1)]


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

        parts = [
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
            f'aria-label="{html.escape(self.title)}">',
            f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="#fafafa" stroke="#ccc"/>',
        ]
        if not self.series and not self.markers:
            parts.append(f'<text x="{LEFT + 10}" y="{TOP + 30}" fill="#666">no rows in this run</text></svg>')
            return "".join(parts)
        for tick in _ticks(v0, v1):
            parts.append(
                f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#eee"/>'
            )
            parts.append(
                f'<text x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" font-size="11">'
                f"{html.escape(self._format(tick))}</text>"
            )
        for tick in _time_ticks(t0, t1):
            label = datetime.fromtimestamp(tick, tz=UTC).strftime("%H:%M:%S" if t1 - t0 < 600 else "%H:%M")
            px = LEFT + (tick - t0) / (t1 - t0) * plot_w
            parts.append(
                f'<text x="{px:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" font-size="11">{label}</text>'
            )
        parts.append(
            f'<text x="14" y="{TOP + plot_h / 2}" transform="rotate(-90 14 {TOP + plot_h / 2})" '
            f'text-anchor="middle" font-size="12">{html.escape(self.y_label)}</text>'
        )
        labels = list(dict.fromkeys([s.label for s in self.series] + [m.label for m in self.markers]))
        colour = {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(labels)}
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
        for index, label in enumerate(labels):
            ly = TOP + 12 + index * 16
            parts.append(f'<rect x="{WIDTH - RIGHT + 10}" y="{ly - 9}" width="10" height="10" fill="{colour[label]}"/>')
            parts.append(f'<text x="{WIDTH - RIGHT + 26}" y="{ly}" font-size="11">{html.escape(label)}</text>')
        parts.append("</svg>")
        return "".join(parts)


def sorted_points(points: Sequence[tuple[datetime, float]]) -> list[tuple[datetime, float]]:
    """Points in time order."""
    return sorted(points, key=lambda point: point[0])
