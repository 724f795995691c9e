"""Cursor signing and the API's settings (configuration file, COATTAIL_API_*, SSM)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from coattail_api.cursor import CursorCodec, InvalidCursorError, query_fingerprint
from coattail_api.settings import load_settings
from coattail_framework.aws import aws_client
from coattail_framework.errors import ConfigError

KEY = b"k" * 32
POSITION = {"alert_id": "a" * 32, "detected_at": "2024-08-08T23:58:01.123000Z", "symbol": "BTCUSDT"}


def test_a_cursor_round_trips_only_for_its_query() -> None:
    codec = CursorCodec(KEY)
    fingerprint = query_fingerprint({"route": "alerts", "partition": "BTCUSDT"})
    token = codec.encode(fingerprint, POSITION)

    assert codec.decode(token, fingerprint, set(POSITION)) == POSITION
    with pytest.raises(InvalidCursorError, match="different query"):
        codec.decode(token, query_fingerprint({"route": "alerts", "partition": "ETHUSDT"}), set(POSITION))
    with pytest.raises(InvalidCursorError, match="position for this query"):
        codec.decode(token, fingerprint, {"alert_id", "detected_at", "alert_type"})
    with pytest.raises(InvalidCursorError, match="signature"):
        CursorCodec(b"x" * 32).decode(token, fingerprint, set(POSITION))


@pytest.mark.parametrize("token", ["", "a.b.c", "!!!.abc", "x" * 3000, "eyJ2IjoxfQ"])
def test_malformed_cursors_are_refused(token: str) -> None:
    with pytest.raises(InvalidCursorError, match="not a cursor issued by this API"):
        CursorCodec(KEY).decode(token, "fp", set(POSITION))


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"\xff\xfe",
        b"[1, 2]",
        b'"a string"',
        json.dumps({"v": 1, "q": "fp", "k": {**POSITION, "alert_id": ""}}).encode(),
        json.dumps({"v": 1, "q": "fp", "k": {**POSITION, "symbol": "S" * 1025}}).encode(),
        json.dumps({"v": 1, "q": "fp", "k": {**POSITION, "symbol": "\ud800"}}).encode(),
        json.dumps({"v": 1, "q": "fp", "k": {**POSITION, "symbol": 7}}).encode(),
        json.dumps({"v": 1, "q": "fp", "k": [POSITION]}).encode(),
    ],
)
def test_signed_but_garbled_cursors_are_refused(kit: Any, payload: bytes) -> None:
    """Only a holder of the key could make these; they are still a 400, never a crash."""
    with pytest.raises(InvalidCursorError, match="does not hold a position for this query"):
        CursorCodec(kit.CURSOR_KEY.encode()).decode(kit.signed_cursor(payload), "fp", set(POSITION))


def test_the_read_budget_setting(kit: Any, tmp_path: Path) -> None:
    config = kit.write_config(tmp_path, "alerts", "http://127.0.0.1:4566")
    key = {"COATTAIL_API_CURSOR_KEY": kit.CURSOR_KEY}

    assert load_settings(key, config).read_budget == 1_000
    assert load_settings({**key, "COATTAIL_API_READ_BUDGET": " 250 "}, config).read_budget == 250
    for refused in ("0", "50001", "1e3", "-5", "ten", "9" * 5_000):
        with pytest.raises(ConfigError, match="COATTAIL_API_READ_BUDGET: must be a whole number from 1 to 50000"):
            load_settings({**key, "COATTAIL_API_READ_BUDGET": refused}, config)


def test_settings_come_from_the_config_file_and_api_variables(kit: Any, tmp_path: Path) -> None:
    config = kit.write_config(tmp_path, "alerts-prod", "http://127.0.0.1:4566")

    settings = load_settings(
        {
            "COATTAIL_API_CURSOR_KEY": kit.CURSOR_KEY,
            "COATTAIL_API_CORS_ALLOW_ORIGINS": "https://desk.example.com,,https://ops.example.com ",
            "COATTAIL_DYNAMODB__TABLE_NAME": "alerts-from-env",
        },
        config,
    )

    assert settings.table_name == "alerts-from-env"
    assert settings.region == "us-east-1"
    assert settings.endpoint_url == "http://127.0.0.1:4566"
    assert settings.cors_allow_origins == ("https://desk.example.com", "https://ops.example.com")
    assert settings.cursor_key.get_secret_value() == kit.CURSOR_KEY.encode()


def test_the_cursor_key_is_required_and_long_enough(kit: Any, tmp_path: Path) -> None:
    config = kit.write_config(tmp_path, "alerts", "http://127.0.0.1:4566")

    with pytest.raises(ConfigError, match="set COATTAIL_API_CURSOR_KEY"):
        load_settings({}, config)
    with pytest.raises(ConfigError, match="at least 32 bytes, got 5"):
        load_settings({"COATTAIL_API_CURSOR_KEY": "short"}, config)
    with pytest.raises(ConfigError, match="only one of"):
        load_settings({"COATTAIL_API_CURSOR_KEY": kit.CURSOR_KEY, "COATTAIL_API_CURSOR_KEY_PARAMETER": "/x"}, config)


def test_the_cursor_key_can_come_from_an_ssm_secure_string(kit: Any, moto_endpoint: str, tmp_path: Path) -> None:
    ssm = aws_client("ssm", region="us-east-1", endpoint_url=moto_endpoint)
    ssm.put_parameter(Name="/coattail/test/api/cursor-key", Value="s" * 40, Type="SecureString", Overwrite=True)
    config = kit.write_config(tmp_path, "alerts", moto_endpoint)

    settings = load_settings({"COATTAIL_API_CURSOR_KEY_PARAMETER": "/coattail/test/api/cursor-key"}, config)

    assert settings.cursor_key.get_secret_value() == b"s" * 40


def test_the_lambda_entry_point_loads_its_settings_from_the_environment(
    kit: Any, dynamodb: Any, moto_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from coattail_api import app
    from coattail_api.local import LocalLambdaContext, http_api_event

    table = kit.new_table(dynamodb)
    for name in [name for name in os.environ if name.startswith("COATTAIL_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("COATTAIL_CONFIG", str(kit.write_config(tmp_path, "ignored", moto_endpoint)))
    monkeypatch.setenv("COATTAIL_DYNAMODB__TABLE_NAME", table)
    monkeypatch.setenv("COATTAIL_API_CURSOR_KEY", kit.CURSOR_KEY)
    app._configured_handler.cache_clear()
    try:
        result = app.handler(http_api_event("GET", "/health", []), LocalLambdaContext("cold-start"))
    finally:
        app._configured_handler.cache_clear()

    assert result["statusCode"] == 200
    assert json.loads(result["body"])["table"] == table
