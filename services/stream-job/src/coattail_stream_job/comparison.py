"""Original vs reprocessed alerts: counts per module and severity, and the ids on one side only.

Pure functions over alert records (``BASE_ALERT_RECORD`` fields as dicts, e.g. Iceberg rows
read back); runs wherever ``coattail-stream-job reprocess`` runs. Alert ids are
deterministic, so the same trades and settings give the same id on both sides: an id on
one side only is a finding that appeared or disappeared with the current configuration
(or with trades the live job dropped as late).

Example::

    comparison = compare_alerts(original_rows, reprocessed_rows)
    print(comparison.render())
    json.dumps(comparison.as_dict())
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from coattail_framework.schemas import SEVERITIES

SHOWN_FIELDS = ("alert_id", "module_id", "severity", "exchange", "symbol", "detected_at", "message")
"""The fields an alert on one side only is shown with."""


@dataclass(frozen=True)
class SeverityCount:
    """Alerts of one module and severity on each side."""

    module_id: str
    severity: str
    original: int
    reprocessed: int


@dataclass(frozen=True)
class AlertComparison:
    """Counts per (module, severity) and the alerts whose id is on one side only (by time, then id)."""

    counts: list[SeverityCount]
    only_original: list[dict[str, Any]]
    only_reprocessed: list[dict[str, Any]]
    in_both: int

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly form (times as ISO 8601 UTC strings)."""
        return {
            "counts": [vars(count) for count in self.counts],
            "in_both": self.in_both,
            "only_original": self.only_original,
            "only_reprocessed": self.only_reprocessed,
        }

    def render(self) -> str:
        """A readable table of the counts, then the one-sided alerts."""
        header = f"{'module':<10} {'severity':<9} {'original':>9} {'reprocessed':>12} {'change':>7}"
        lines = [header, "-" * len(header)]
        for count in self.counts:
            change = count.reprocessed - count.original
            lines.append(
                f"{count.module_id:<10} {count.severity:<9} {count.original:>9} {count.reprocessed:>12} {change:>+7}"
            )
        lines.append(f"alerts in both: {self.in_both}")
        for title, alerts in (("only in original", self.only_original), ("only in reprocessed", self.only_reprocessed)):
            lines.append(f"{title} ({len(alerts)}):")
            lines.extend(
                f"  {a['alert_id']}  {a['module_id']:<8} {a['severity']:<8} {a['detected_at']}  {a['message']}"
                for a in alerts
            )
        return "\n".join(lines)


def _shown(alert: Mapping[str, Any]) -> dict[str, Any]:
    shown = {name: alert.get(name) for name in SHOWN_FIELDS}
    if isinstance(shown["detected_at"], datetime):
        shown["detected_at"] = shown["detected_at"].isoformat()
    return shown


def _severity_order(key: tuple[str, str]) -> tuple[str, int, str]:
    module, severity = key
    rank = SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES)
    return module, rank, severity


def compare_alerts(original: Sequence[Mapping[str, Any]], reprocessed: Sequence[Mapping[str, Any]]) -> AlertComparison:
    """Compare two sets of alert records by ``alert_id``."""
    before = Counter((str(a["module_id"]), str(a["severity"])) for a in original)
    after = Counter((str(a["module_id"]), str(a["severity"])) for a in reprocessed)
    counts = [
        SeverityCount(module, severity, before[(module, severity)], after[(module, severity)])
        for module, severity in sorted(set(before) | set(after), key=_severity_order)
    ]
    original_ids = {str(a["alert_id"]) for a in original}
    reprocessed_ids = {str(a["alert_id"]) for a in reprocessed}

    def one_sided(alerts: Sequence[Mapping[str, Any]], other: set[str]) -> list[dict[str, Any]]:
        shown = [_shown(a) for a in alerts if str(a["alert_id"]) not in other]
        return sorted(shown, key=lambda a: (str(a["detected_at"]), str(a["alert_id"])))

    return AlertComparison(
        counts=counts,
        only_original=one_sided(original, reprocessed_ids),
        only_reprocessed=one_sided(reprocessed, original_ids),
        in_both=len(original_ids & reprocessed_ids),
    )
