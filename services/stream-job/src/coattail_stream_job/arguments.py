"""Argument types shared by the subcommands (parsed in the CLI process, before any work)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime


def utc_time(text: str) -> datetime:
    """An ISO 8601 time (``2024-08-08T23:54:00Z``, ``2024-08-08``) as an aware UTC datetime; naive means UTC."""
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 time; use e.g. 2024-08-08T23:54:00Z or 2024-08-08"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def positive_int(text: str) -> int:
    """An integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def positive_seconds(text: str) -> float:
    """A number of seconds > 0 (fractions allowed)."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value
