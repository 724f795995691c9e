"""The trade history of one venue, from its connector plugin (entry points ``coattail.connectors``).

``exchanges.<venue>.connector`` in the configuration names the connector (a venue not
listed there is served by the connector of the same name, with its default settings); the
connector is built like the producer builds it, from ``exchanges.<venue>.settings`` plus
``exchange`` (the venue id) and ``symbols``, and its ``trade_history()`` is what
``load-history`` pages. ``rest_url`` and ``rest_weight_limit_per_minute`` override those
settings when given (``--base-url``, ``--weight-per-minute``). A connector that offers no
history is refused with a ``ConfigError`` naming it. Runs in the CLI's process; no
connector package is imported by name here.

Example::

    async with open_trade_history(config, "coinbase", symbol="BTC-USD") as history:
        first = await history.first_at_or_after("BTC-USD", start, end)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from coattail_framework.config import CoattailConfig
from coattail_framework.connector import BaseConnector
from coattail_framework.errors import CoattailError, ConfigError
from coattail_framework.history import TradeHistory
from coattail_framework.registry import ModuleRegistry


def connector_registry() -> ModuleRegistry:
    """Connector plugins only: the detectors (and the PySpark they import) are not loaded."""
    return ModuleRegistry().discover("connector")


def history_settings(
    config: CoattailConfig,
    venue: str,
    symbol: str,
    *,
    rest_url: str | None = None,
    weight_per_minute: int | None = None,
) -> tuple[str, dict[str, Any]]:
    """The connector name serving ``venue`` and the settings its history is built from."""
    exchange = config.exchanges.get(venue)
    connector_name = venue if exchange is None else exchange.connector
    settings: dict[str, Any] = {} if exchange is None else dict(exchange.settings)
    settings.update(exchange=venue, symbols=[symbol])
    if rest_url is not None:
        settings["rest_url"] = rest_url
    if weight_per_minute is not None:
        settings["rest_weight_limit_per_minute"] = weight_per_minute
    return connector_name, settings


def open_trade_history(
    config: CoattailConfig,
    venue: str,
    *,
    symbol: str,
    rest_url: str | None = None,
    weight_per_minute: int | None = None,
    registry: ModuleRegistry | None = None,
) -> TradeHistory:
    """``venue``'s ``TradeHistory`` from its connector; ``ConfigError`` when it cannot be had."""
    connector_name, settings = history_settings(
        config, venue, symbol, rest_url=rest_url, weight_per_minute=weight_per_minute
    )
    connector_class = (registry or connector_registry()).get_connector(connector_name)
    if not connector_class.offers_history():
        raise ConfigError(
            f"exchanges.{venue}: connector {connector_name!r} ({connector_class.__module__}."
            f"{connector_class.__name__}) offers no trade history, so load-history cannot load {venue!r}; "
            "use a venue whose connector implements BaseConnector.trade_history"
        )
    factory: Callable[..., BaseConnector] = connector_class  # the constructor contract of BaseConnector
    try:
        connector = factory(settings=settings)
    except (CoattailError, ValueError, TypeError) as error:
        raise ConfigError(
            f"exchanges.{venue}.settings: connector {connector_name!r} rejected the settings load-history built "
            f"(--base-url sets rest_url, --weight-per-minute sets rest_weight_limit_per_minute): {error}"
        ) from None
    return connector.trade_history()
