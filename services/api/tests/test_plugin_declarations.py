"""The API knows alert types only from the detectors' light declarations, never PySpark.

Routes per alert type come from ``DetectorInfo.alert_types[*].view`` (entry-point group
``coattail.detector_info``); the Lambda process must run without PySpark installed, so it
may import neither PySpark nor any detector class.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from coattail_api.app import _views, create_resolver, installed_alert_types
from coattail_api.cursor import CursorCodec
from coattail_api.local import LocalLambdaContext, http_api_event
from coattail_api.store import AlertStore
from coattail_framework.errors import PluginError
from coattail_framework.plugins import AlertType, AlertView, DetailField

PROBE = textwrap.dedent(
    """
    import json, sys
    from urllib.parse import urlencode
    from coattail_api import app
    from coattail_api.local import LocalLambdaContext, http_api_event

    paths = ["/health", "/alerts"] + [f"/{view.path}" for _, view in app._views(app.installed_alert_types())]
    statuses = {}
    for path in paths:
        target = path if path == "/health" else f"{path}?{urlencode({'symbol': 'BTC/USD'})}"
        event = http_api_event("GET", target, [])
        statuses[path] = app.handler(event, LocalLambdaContext("probe"))["statusCode"]
    loaded = sorted(
        name for name in sys.modules
        if name.split(".")[0] == "pyspark" or (name.startswith("coattail_detector_") and name.count("."))
    )
    print(json.dumps({"statuses": statuses, "loaded": loaded}))
    """
)


def test_the_api_process_never_imports_pyspark_nor_a_detector_class(
    kit: Any, dynamodb: Any, moto_endpoint: str, tmp_path: Path
) -> None:
    table = kit.new_table(dynamodb)
    environ = {
        **os.environ,
        "COATTAIL_CONFIG": str(kit.write_config(tmp_path, table, moto_endpoint)),
        "COATTAIL_API_CURSOR_KEY": kit.CURSOR_KEY,
    }
    result = subprocess.run(
        [sys.executable, "-c", PROBE], env=environ, capture_output=True, text=True, check=True, timeout=120
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])

    assert len(report["statuses"]) > 2, "no detector declaration is installed: the probe proves nothing"
    assert set(report["statuses"].values()) == {200}
    assert [name for name in report["loaded"] if not name.endswith(".metadata")] == []


def test_the_installed_declarations_give_the_views_routes() -> None:
    views = _views(installed_alert_types())

    assert views, "the dev environment installs the shipped detectors"
    for alert_type, view in views:
        assert alert_type.view is view


BIG_FILL = AlertType(
    "big_fill",
    details=(DetailField("notional", "number", nullable=False),),
    view=AlertView(path="big-fills", kind="listing", min_filter="notional"),
)


def test_a_route_is_built_from_any_declared_view(kit: Any, dynamodb: Any, moto_endpoint: str, tmp_path: Path) -> None:
    table = kit.new_table(dynamodb)
    rows = [
        kit.AlertRow("big_fill", "MOD-900", "BTCUSDT", "binance", "high", kit.BASE_TIME, "small", {"notional": 5.0}),
        kit.AlertRow("big_fill", "MOD-900", "ETHUSDT", "binance", "high", kit.BASE_TIME, "big", {"notional": 50.0}),
    ]
    kit.write_alerts(table, moto_endpoint, rows)
    settings = kit.settings_for(tmp_path, table, moto_endpoint)
    store = AlertStore(dynamodb, table, read_budget=settings.read_budget)
    codec = CursorCodec(settings.cursor_key.get_secret_value())
    resolver = create_resolver(store, codec, settings, alert_types=[BIG_FILL])

    def get(target: str) -> tuple[int, Any]:
        result = resolver.resolve(http_api_event("GET", target, []), LocalLambdaContext("test"))
        return result["statusCode"], json.loads(result["body"])

    status, body = get("/big-fills?min_notional=10")
    assert (status, [alert["message"] for alert in body["alerts"]]) == (200, ["big"])
    assert get("/big-fills?min_size=10")[0] == 400
    assert get("/whales")[0] == 404


def test_two_views_on_one_path_are_refused() -> None:
    other = AlertType("other_fill", details=(), view=AlertView(path="big-fills", kind="listing"))
    with pytest.raises(PluginError, match=r"alert type 'other_fill' declares view /big-fills"):
        _views([BIG_FILL, other])
    with pytest.raises(PluginError, match="the API's own route"):
        _views([AlertType("health_check", details=(), view=AlertView(path="health", kind="listing"))])
