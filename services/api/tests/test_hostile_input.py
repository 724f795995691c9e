"""Hostile requests never reach a 5xx: the measured cases, then seeded fuzzing of every route.

Requests go through the real Lambda handler over moto's DynamoDB, as API Gateway HTTP API
(payload 2.0) events built here field by field, so that paths, names and values can hold
what a URL cannot (lone surrogates, raw control characters).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from coattail_api.app import create_handler
from coattail_api.local import LocalLambdaContext, http_api_event

SEED = 20_261_206
CASES = 6_000
TIME_RANGE = "must be from 1970-01-01T00:00:00Z to 2099-12-31T23:59:59Z"


@pytest.fixture(scope="module")
def seeded(kit: Any, moto_endpoint: str, alert_table: str) -> list[Any]:
    rows = [*kit.volume_spikes(5), kit.whale(0, 900_000.0, symbol="ETHUSDT"), kit.spread(0, "binance", "coinbase", 0.4)]
    kit.write_alerts(alert_table, moto_endpoint, rows)
    return rows


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: dict[str, Any]


Send = Callable[[str, str, dict[str, str]], Answer]


def sender(handler: Any) -> Send:
    """``send(method, raw_path, query)``: one event with exactly these fields through ``handler``."""

    def send(method: str, path: str, query: dict[str, str]) -> Answer:
        event = http_api_event(method, "/", [])
        event["rawPath"] = path
        event["requestContext"]["http"]["path"] = path
        event["rawQueryString"] = urlencode(query, errors="surrogatepass")
        if query:
            event["queryStringParameters"] = dict(query)
        result = handler(event, LocalLambdaContext(event["requestContext"]["requestId"]))
        body = json.loads(result["body"]) if result.get("body") else {}
        return Answer(int(result["statusCode"]), dict(result.get("headers") or {}), body)

    return send


@pytest.fixture(scope="module")
def send(handler: Any) -> Send:
    return sender(handler)


def test_a_far_future_time_with_a_negative_offset_is_a_400_naming_since(send: Send, seeded: Any) -> None:
    """``9999-12-31T23:59:59-05:00`` is in year 10000 UTC: it used to overflow into a 500."""
    since = send("GET", "/alerts", {"symbol": "BTCUSDT", "since": "9999-12-31T23:59:59-05:00"})
    until = send("GET", "/whales", {"until": "9999-12-31T23:59:59-05:00"})
    spreads = send("GET", "/spreads", {"symbol": "BTC/USD", "since": "0001-01-01T00:00:00+05:00"})

    assert (since.status, since.body["message"]) == (400, f"since: {TIME_RANGE}")
    assert (until.status, until.body["message"]) == (400, f"until: {TIME_RANGE}")
    assert (spreads.status, spreads.body["message"]) == (400, f"since: {TIME_RANGE}")


def test_the_edges_of_the_time_range_are_accepted(send: Send, seeded: Any) -> None:
    first = {"symbol": "BTCUSDT", "since": "1970-01-01T00:00:00Z", "until": "2099-12-31T23:59:59.999999Z"}
    shifted = {"symbol": "BTCUSDT", "since": "1970-01-01T01:00:00+01:00", "until": "2099-12-31T18:59:59-05:00"}

    assert send("GET", "/alerts", first).body["count"] == 5
    assert send("GET", "/alerts", shifted).body["count"] == 5


def test_a_60000_character_module_id_is_a_400(send: Send, seeded: Any) -> None:
    module_id = "MOD-" + "0" * 59_996
    response = send("GET", "/alerts", {"module_id": module_id})

    assert len(module_id) == 60_000
    assert (response.status, response.body["message"]) == (400, "module_id: string should have at most 25 characters")


@pytest.mark.parametrize(
    ("path", "query", "message"),
    [
        ("/alerts", {"symbol": "B" * 60_000}, "symbol: string should have at most 32 characters"),
        ("/alerts", {"alert_type": "w" * 60_000}, "alert_type: string should have at most 64 characters"),
        (
            "/alerts",
            {"symbol": "BTCUSDT", "cursor": "c" * 60_000},
            "cursor: string should have at most 2048 characters",
        ),
        ("/spreads", {"symbol": "B" * 60_000}, "symbol: string should have at most 31 characters"),
        ("/alerts/" + "f" * 60_000, {}, "alert_id: string should have at most 32 characters"),
        ("/alerts", {"symbol": "BTCUSDT", "s" * 60_000: "1"}, f"{'s' * 64}...: unknown parameter"),
    ],
)
def test_every_string_is_bounded_far_inside_dynamodb_key_limits(
    send: Send, seeded: Any, path: str, query: dict[str, str], message: str
) -> None:
    response = send("GET", path, query)

    assert (response.status, response.body["message"][: len(message)]) == (400, message)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"symbol": "BTCUSDT", "limit": "\t5"}, "limit: must be printable text"),
        ({"symbol": "BTCUSDT", "min_notional": "1\n"}, "min_notional: must be printable text"),
        ({"symbol": "BTCUSDT\ud800"}, "symbol: input should be a valid string"),
        ({"symbol": "BTCUSDT", "x\x1b[31m": "1"}, "x?[31m: must be printable text"),
        ({"symbol": "BTCUSDT", "\ud800": "1"}, "?: must be printable text"),
    ],
)
def test_control_characters_and_lone_surrogates_are_a_400(
    send: Send, seeded: Any, query: dict[str, str], message: str
) -> None:
    path = "/whales" if "min_notional" in query else "/alerts"
    response = send("GET", path, query)

    assert (response.status, response.body["message"][: len(message)]) == (400, message)


def test_a_path_that_only_matches_because_of_a_trailing_newline_is_a_404(send: Send, seeded: Any) -> None:
    health = send("GET", "/health\n", {})
    alert = send("GET", f"/alerts/{seeded[0].alert_id}\n", {})

    assert (health.status, health.body["message"]) == (404, "no route /health?; see docs/API.md")
    assert alert.status == 404


def test_post_alerts_is_a_405_with_allow(send: Send, seeded: Any) -> None:
    response = send("POST", "/alerts", {})

    assert response.status == 405
    assert response.headers["Allow"] == "GET"
    assert response.body["message"] == "POST /alerts: method not allowed; this route answers GET"


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "PROPFIND"])
@pytest.mark.parametrize("path", ["/alerts", "/alerts/" + "0" * 32, "/whales", "/spreads", "/health"])
def test_every_other_method_on_a_route_is_a_405(send: Send, seeded: Any, method: str, path: str) -> None:
    response = send(method, path, {})

    assert (response.status, response.headers["Allow"]) == (405, "GET")


def test_an_unknown_route_stays_404_whatever_the_method(send: Send, seeded: Any) -> None:
    assert send("POST", "/alarms", {}).status == 404
    assert send("GET", "/alerts/a/b", {}).status == 404
    assert "Allow" not in send("DELETE", "/alerts/a/b", {}).headers


def test_with_cors_allow_names_options_and_preflight_still_works(
    kit: Any, alert_table: str, moto_endpoint: str, tmp_path: Path
) -> None:
    settings = kit.settings_for(tmp_path, alert_table, moto_endpoint, COATTAIL_API_CORS_ALLOW_ORIGINS="*")
    send = sender(create_handler(settings))

    post = send("POST", "/alerts", {})
    preflight = send("OPTIONS", "/alerts", {})

    assert (post.status, post.headers["Allow"]) == (405, "GET, OPTIONS")
    assert preflight.status == 204


NASTY = (
    "\x00", "\x01", "\x1b", "\x1f", "\x7f", "\x85", "\u2028", "\u202e", "\ud800", "\udfff", "\ufeff", "\xa0",
    " ", "%", "&", "=", "?", "#", "\\", "'", '"', "<", ">", "{", "}", "[", "]", "|", "^", "`", "~", ";", ",",
    "é", "\uff22", "\U0001d538", "\n", "\r", "\t", "+", "*", "!", "@", "$", "(", ")", ":",
)  # fmt: skip
"""Characters outside every parameter's pattern."""

ROUTE_PARAMETERS = {
    "/alerts": ("symbol", "alert_type", "module_id", "severity", "since", "until", "limit", "cursor"),
    "/whales": ("symbol", "since", "until", "min_notional", "limit", "cursor"),
    "/spreads": ("symbol", "since"),
    "/health": (),
    "/alerts/{alert_id}": (),
}
VALID = {
    "symbol": "BTCUSDT",
    "alert_type": "volume_spike",
    "module_id": "MOD-001",
    "severity": "high",
    "since": "2024-08-08T23:50:00Z",
    "until": "2024-08-09T00:30:00+00:00",
    "limit": "5",
    "min_notional": "100000",
    "spreads.symbol": "BTC/USD",
}
BAD_TIMES = (
    "9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00", "1969-12-31T23:59:59Z", "2100-01-01T00:00:00Z",
    "1723161600", "-1", "0", "2024-08-08", "2024-08-08T00:00:00", "2024-13-01T00:00:00Z", "2024-02-30T00:00:00Z",
    "2024-08-08T24:00:00Z", "2024-08-08T23:60:00Z", "2024-08-08T00:00:00+24:00", "2024-08-08T00:00:00+99:99",
    "yesterday", "", "nan", "2024-08-08T00:00:00Z" * 3, "P1D", "2024-W32-4", "+2024-08-08T00:00:00Z",
)  # fmt: skip
BAD_LIMITS = ("0", "-1", "501", "1e3", "nan", "inf", "-inf", "", "ten", "1.5", "0x10", "9" * 5_000, "٣٠", "5,6")
BAD_NOTIONALS = ("-1", "-1e-9", "nan", "NaN", "inf", "-inf", "1e16", "1e400", "9" * 400, "", "abc", "0x10", "1,2")
BAD_SEVERITIES = ("HIGH", "", "critical ", "extreme", "low,high", "h" * 1_000, "high\x00")
BAD_NAMES = ("sort", "LIMIT", "Symbol", "limit ", "", "\x00", "\ud800", "a" * 10_000, "symbol[]", "__proto__")
BAD_PATHS = (
    "/", "", "/alarms", "/ALERTS", "/alerts/", "/alerts//", "//alerts", "/alerts/../health", "/alerts/x/y",
    "/health/", "/whales/1", "/spreads/BTC/USD", "/alerts%00", "/health\n", "/health\r\n", "/alerts;x",
    "/%2e%2e/health", "/health?verbose", "/" + "a" * 100_000, "/alerts/" + "f" * 33, "/alerts/" + "F" * 32,
    "/alerts/" + "f" * 31, "/alerts/" + "f" * 60_000,
)  # fmt: skip
OTHER_METHODS = ("POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "CONNECT", "PROPFIND", "FOO", "G\x00T")
PARTITION_MESSAGE = "symbol, alert_type or module_id"


class Fuzzer:
    """Hostile requests from one ``random.Random(seed)``; each says which outcomes it allows."""

    def __init__(self, seed: int, alert_id: str, cursors: list[str]) -> None:
        self.rng = random.Random(seed)
        self.alert_id = alert_id
        self.cursors = cursors

    def junk(self, length: int | None = None) -> str:
        """Random text holding at least one character no parameter accepts."""
        size = length if length is not None else self.rng.choice((1, 2, 5, 33, 65, 257, 2_049))
        text = "".join(self.rng.choice((*NASTY, "A", "z", "0", "-", "_", ".", "/")) for _ in range(size))
        position = self.rng.randrange(len(text) + 1)
        return text[:position] + self.rng.choice(NASTY) + text[position:]

    def broken(self, valid: str) -> str:
        """``valid`` made invalid: too long, a forbidden character inserted, or emptied."""
        choice = self.rng.randrange(3)
        if choice == 0:
            return valid + "0" * self.rng.choice((70, 3_000, 60_000))
        if choice == 1:
            position = self.rng.randrange(len(valid) + 1)
            return valid[:position] + self.rng.choice(NASTY) + valid[position:]
        return ""

    def bad_time(self) -> str:
        choice = self.rng.randrange(4)
        if choice == 0:
            return self.rng.choice(BAD_TIMES)
        if choice == 1:
            year = self.rng.choice((self.rng.randint(1, 1969), self.rng.randint(2100, 9999)))
            sign, hours = self.rng.choice("+-"), self.rng.randint(0, 14)
            return f"{year:04d}-{self.rng.randint(1, 12):02d}-01T12:00:00{sign}{hours:02d}:00"
        if choice == 2:
            return str(self.rng.randint(-(10**12), 10**12))
        return self.junk()

    def bad_cursor(self) -> str:
        real = self.rng.choice(self.cursors)
        payload, signature = real.split(".")
        choice = self.rng.randrange(7)
        if choice == 0:
            index = self.rng.randrange(len(payload))
            return f"{payload[:index]}{'A' if payload[index] != 'A' else 'B'}{payload[index + 1 :]}.{signature}"
        if choice == 1:
            return real[: self.rng.randrange(len(real))]
        if choice == 2:
            return real + self.rng.choice(("A", "AA", "=", ".", "..", "x" * 2_000))
        if choice == 3:
            return f"{signature}.{payload}"
        if choice == 4:
            return real  # issued for another query than the fuzzed ones
        if choice == 5:
            return self.rng.choice(("", "a.b.c", ".", "e30.e30", "x" * 3_000, "!!!.abc"))
        return self.junk()

    def bad_value(self, name: str, route: str) -> str:
        if name in ("since", "until"):
            return self.bad_time()
        if name == "limit":
            return self.rng.choice((*BAD_LIMITS, str(self.rng.randint(501, 10**18)), str(-self.rng.randint(0, 10**18))))
        if name == "min_notional":
            return self.rng.choice((*BAD_NOTIONALS, repr(self.rng.uniform(1.01e15, 1e300)), repr(-self.rng.random())))
        if name == "severity":
            return self.rng.choice((*BAD_SEVERITIES, self.broken("high")))
        if name == "cursor":
            return self.bad_cursor()
        valid = VALID["spreads.symbol"] if (route, name) == ("/spreads", "symbol") else VALID[name]
        return self.rng.choice((self.broken(valid), self.junk(), valid.lower() + "\x00", f"{valid},{valid}"))

    def base_query(self, route: str) -> dict[str, str]:
        """Valid parameters a request starts from (the partition, for the routes needing one)."""
        if route == "/alerts":
            return {"symbol": VALID["symbol"]}
        if route == "/spreads":
            return {"symbol": VALID["spreads.symbol"]}
        return {}

    def path_of(self, route: str) -> str:
        return f"/alerts/{self.alert_id}" if route == "/alerts/{alert_id}" else route

    def case(self) -> tuple[str, str, dict[str, str], frozenset[int]]:
        """``(method, path, query, allowed statuses)`` of the next hostile request."""
        kind = self.rng.choices(("parameter", "name", "path", "method"), weights=(6, 1, 2, 2))[0]
        route = self.rng.choice(tuple(ROUTE_PARAMETERS))
        query = self.base_query(route)
        if kind == "method":
            if self.rng.random() < 0.3:
                query[self.junk(3)] = self.junk()
            return self.rng.choice(OTHER_METHODS), self.path_of(route), query, frozenset({405})
        if kind == "path":
            path = self.rng.choice((self.rng.choice(BAD_PATHS), "/" + self.junk(), "/alerts/" + self.junk()))
            return "GET", path, query, frozenset({400, 404})
        names = ROUTE_PARAMETERS[route]
        if kind == "name" or not names:
            query[self.rng.choice((*BAD_NAMES, self.junk()))] = self.rng.choice(("1", self.junk()))
        else:
            for name in self.rng.sample(names, self.rng.randint(1, min(3, len(names)))):
                query[name] = self.bad_value(name, route)
        return "GET", self.path_of(route), query, frozenset({400})


def shown_names(query: dict[str, str]) -> set[str]:
    """Parameter names as an error message may quote them (see ``coattail_api.app._shown``)."""
    shown = set()
    for name in query:
        printable = "".join(char if " " <= char <= "~" else "?" for char in name[:64])
        shown.add((printable + ("..." if len(name) > 64 else "")) or '""')
    return shown


def test_thousands_of_seeded_hostile_requests_never_get_a_5xx(
    send: Send, seeded: Any, kit: Any, caplog: pytest.LogCaptureFixture
) -> None:
    issued = send("GET", "/alerts", {"alert_type": "volume_spike", "limit": "2"}).body["next_cursor"]
    forged = [
        kit.signed_cursor(b"not json"),
        kit.signed_cursor(b"[1, 2]"),
        kit.signed_cursor(b'{"v": 2}'),
        kit.signed_cursor(b"\xff\xfe"),
        kit.signed_cursor(json.dumps({"v": 1, "q": "0" * 32, "k": {"alert_id": ""}}).encode()),
    ]
    fuzzer = Fuzzer(SEED, seeded[0].alert_id, [issued, *forged])
    outcomes: dict[int, int] = {}

    for number in range(CASES):
        method, path, query, allowed = fuzzer.case()
        answer = send(method, path, query)
        context = f"case {number}: {method!r} {path[:80]!r} { ({k[:40]: v[:80] for k, v in query.items()})!r}"
        outcomes[answer.status] = outcomes.get(answer.status, 0) + 1

        assert answer.status in allowed, f"{context} -> {answer.status} {answer.body}"
        assert answer.body["statusCode"] == answer.status
        assert len(answer.body["request_id"]) == 32
        if answer.status == 405:
            assert answer.headers["Allow"] == "GET", context
        if answer.status == 400:
            named = tuple(f"{name}: " for name in {*shown_names(query), PARTITION_MESSAGE, "alert_id"})
            assert answer.body["message"].startswith(named), f"{context} -> {answer.body}"

    assert sum(outcomes.values()) == CASES
    assert set(outcomes) == {400, 404, 405}
    assert min(outcomes.values()) > 500
    assert not [record for record in caplog.records if record.getMessage() == "unhandled error"]
