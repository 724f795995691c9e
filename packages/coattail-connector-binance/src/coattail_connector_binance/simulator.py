"""A local Binance: websocket streams and the public REST trades endpoints on 127.0.0.1.

One aiohttp application serves both, in Binance's wire format:

- ``/ws/<stream>`` (bare payloads) and ``/stream?streams=a/b`` (``{"stream", "data"}``
  wrappers, lower-case stream names), SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS requests
  with their ``{"result": ..., "id": ...}`` replies, server pings (a client that does not pong
  within ``pong_timeout_s`` is dropped) and a limit of 5 incoming messages per second.
- ``GET /api/v3/historicalTrades`` and ``GET /api/v3/aggTrades`` (also under ``/fapi/v1``):
  ``symbol``, ``fromId``, ``limit`` (default 500, max 1000, else 400 ``-1130``), and for
  aggTrades ``startTime``/``endTime`` (at most one hour apart); weight 25 and 4, 6,000 weight
  per minute per client address with ``X-MBX-USED-WEIGHT-1M``, 429 + ``Retry-After`` beyond,
  418 (banned) for a client that keeps going after 429s. The aggTrades of a recorded
  ``@trade`` feed are one aggregate per trade (``a = f = l = t``).

Recorded frames (``load()``) make a single market: each frame is published in order (its
trade becomes visible over REST) and sent to every connected client subscribed to its
stream. By default the market moves as fast as the clients read and waits while no client
is connected; with ``speed`` it follows the recorded receive times (``speed=2`` is twice as
fast) whether or not anyone listens. Like Binance, nothing a client missed is resent on the
websocket. Recorded lines that are not stream frames (a REST depth snapshot) are counted in
``skipped`` and not served. Fault knobs: ``drop_connections``, ``inject_raw``,
``truncate_next``, ``stall``, ``refuse_connections``, ``force_rest_status``.

``recorded_clock()`` is the connector's ``wall_clock`` in a replay: the recorded receive
time of the last frame sent to a client, or published while none reads (a recording
without receive times: its trade time ``T`` when within the recording's bulk,
``coattail_framework.simulator.recording_bulk``). The connector then judges trade times by
its own default window against the recording's clock, so an absurd ``T`` in a recording is
rejected however old the recording is. Without ``speed`` the market would otherwise run
ahead of its readers by all that the socket buffers hold (a minute of recording was seen),
so after each frame it sends it pings every reading client and waits for the pong: the
next frame (and the clock) moves only once the clients have read this one, and a connector
stamps each frame with its own recorded receive time (about 0.25 ms per frame on
loopback). A client that does not answer within ``sync_timeout_s`` is not waited for again
until it has answered. These sync pings do not count toward the 5 messages per second a
client may send, nor in ``pongs_received``.

Runs on the caller's event loop (tests, the producer's replay mode, benchmarks).

Example::

    simulator = BinanceSimulator()
    simulator.load(read_recording(Path("tests/data/binance/ws/spot_btcusdt_20240808.gz")))
    await simulator.start()
    connector = BinanceConnector(simulator.connector_settings(), wall_clock=simulator.recorded_clock())
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import logging
import math
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from aiohttp import WSMsgType, web

from coattail_connector_binance.settings import MAX_STREAMS_PER_CONNECTION
from coattail_framework.recordings import RecordedMessage
from coattail_framework.simulator import ExchangeSimulator, ReadSync, RecordedClock, recording_bulk, sync_clients

LOG = logging.getLogger(__name__)

_REST_PREFIXES = ("/api/v3", "/fapi/v1")
_WEIGHT = {"historicalTrades": 25, "aggTrades": 4}
_MAX_AGG_RANGE_MS = 3_600_000
_COMPACT_COMBINED = re.compile(r'^\{"stream":"([^"]+)","data":(\{.*\})\}$', re.DOTALL)
_FAIRNESS_BATCH = 64
"""Frames the market sends before letting other tasks run (sends rarely block on loopback)."""


@dataclass(frozen=True)
class _Frame:
    """One frame of the market: ``stream`` None means every client gets it (garbage)."""

    stream: str | None
    combined: str
    bare: str
    received_ns: int | None
    symbol: str | None = None
    trade: dict[str, Any] | None = None
    aggregate: dict[str, Any] | None = None


@dataclass(eq=False)
class _Client:
    ws: web.WebSocketResponse
    request: web.Request
    streams: list[str]
    combined: bool
    stalled: bool = False
    last_pong: float = field(default_factory=time.monotonic)
    incoming: deque[float] = field(default_factory=deque)
    sync: ReadSync = field(default_factory=ReadSync)
    """The clock-sync ping awaiting its pong (see the module docstring)."""


@dataclass
class _WeightAccount:
    minute: int = -1
    used: int = 0
    limited_until: float = 0.0
    violations: int = 0
    banned_until: float = 0.0


def _frame_from(message: RecordedMessage) -> _Frame | None:
    """The market frame of one recorded line; None for a line that is not a stream frame."""
    raw_frame = _Frame(None, message.payload, message.payload, message.received_ns)
    if message.malformed:
        return raw_frame
    if (compact := _COMPACT_COMBINED.match(message.payload)) is not None:
        # Binance's own compact framing: serve the payload verbatim and decode trades only.
        stream, bare = compact.group(1).lower(), compact.group(2)
        if not stream.endswith(("@trade", "@aggtrade")):
            return _Frame(stream, message.payload, bare, message.received_ns)
    try:
        decoded = json.loads(message.payload)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the decoder goes
        return raw_frame
    if not isinstance(decoded, dict):
        return raw_frame
    if isinstance(decoded.get("stream"), str) and isinstance(decoded.get("data"), dict):
        stream, data = decoded["stream"].lower(), decoded["data"]
        combined = message.payload
        bare = compact.group(2) if compact is not None else json.dumps(data, separators=(",", ":"))
    elif isinstance(decoded.get("e"), str) and isinstance(decoded.get("s"), str):
        data = decoded
        stream = f"{data['s'].lower()}@{data['e']}"
        combined, bare = json.dumps({"stream": stream, "data": data}, separators=(",", ":")), message.payload
    else:
        return None
    symbol = stream.split("@", 1)[0].upper()
    if data.get("s") != symbol:  # not a trade of its stream's symbol: served as it is, never on REST
        return _Frame(stream, combined, bare, message.received_ns)
    trade, aggregate = _rest_records(data)
    return _Frame(stream, combined, bare, message.received_ns, symbol, trade, aggregate)


def _rest_records(data: Mapping[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The historicalTrades and aggTrades records of a valid trade payload (one aggregate per trade)."""
    try:
        price, quantity = Decimal(data["p"]), Decimal(data["q"])
        time_ms, maker = int(data["T"]), bool(data["m"])
        if data.get("e") == "aggTrade":
            aggregate = {key: data[key] for key in ("a", "p", "q", "f", "l", "T", "m")}
            return None, {**aggregate, "M": bool(data.get("M", True))}
        if data.get("e") != "trade":
            return None, None
        trade_id = int(data["t"])
        quote_quantity = format(price * quantity, "f")
    except (KeyError, TypeError, ValueError, ArithmeticError):  # ArithmeticError: decimal's InvalidOperation, Overflow
        return None, None
    best = bool(data.get("M", True))
    trade = {
        "id": trade_id,
        "price": data["p"],
        "qty": data["q"],
        "quoteQty": quote_quantity,
        "time": time_ms,
        "isBuyerMaker": maker,
        "isBestMatch": best,
    }
    aggregate = {
        "a": trade_id,
        "p": data["p"],
        "q": data["q"],
        "f": trade_id,
        "l": trade_id,
        "T": time_ms,
        "m": maker,
        "M": best,
    }
    return trade, aggregate


class _History:
    """Published REST records of one symbol, in id order."""

    def __init__(self, id_key: str) -> None:
        self.id_key = id_key
        self.records: list[dict[str, Any]] = []
        self.ids: list[int] = []

    def add(self, record: dict[str, Any]) -> None:
        record_id = int(record[self.id_key])
        if self.ids and record_id <= self.ids[-1]:
            return
        self.records.append(record)
        self.ids.append(record_id)


def _error(status: int, code: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response({"code": code, "msg": message}, status=status, headers=headers)


class BinanceSimulator(ExchangeSimulator):
    """Serves loaded Binance frames over a real websocket and REST server on 127.0.0.1."""

    def __init__(
        self,
        *,
        speed: float | None = None,
        exchange: str = "binance",
        ping_interval_s: float = 20.0,
        pong_timeout_s: float = 60.0,
        weight_limit_per_minute: int = 6000,
        ban_after_violations: int = 3,
        ban_seconds: float = 120.0,
        max_incoming_per_s: int = 5,
        sync_timeout_s: float = 1.0,
    ) -> None:
        if speed is not None and speed <= 0:
            raise ValueError(f"speed must be > 0 (2.0 replays twice as fast as recorded), got {speed}")
        self.speed = speed
        self.exchange = exchange
        self.ping_interval_s = ping_interval_s
        self.pong_timeout_s = pong_timeout_s
        self.weight_limit_per_minute = weight_limit_per_minute
        self.ban_after_violations = ban_after_violations
        self.ban_seconds = ban_seconds
        self.max_incoming_per_s = max_incoming_per_s
        self.sync_timeout_s = sync_timeout_s
        """Longest wait for a client's answer to a clock-sync ping (see the module docstring)."""
        self.skipped = 0
        """Recorded lines that are not stream frames (not served)."""
        self.frames_sent = 0
        """Frames delivered to at least one client."""
        self.frames_published = 0
        """Frames made public (sent to the subscribers connected then, trades on REST)."""
        self.connection_attempts: list[float] = []
        """``time.monotonic()`` of every websocket connection attempt, refused ones included."""
        self.control_messages: list[tuple[float, str]] = []
        """``(time.monotonic(), method)`` of every request a client sent."""
        self.pongs_received = 0
        """Pongs the clients sent in answer to the server's pings."""
        self.close_codes: list[int | None] = []
        """The close code of every finished connection (None: dropped without a close frame)."""
        self._pending: deque[_Frame] = deque()
        self._symbols: dict[str, None] = {}
        self._stream_kinds: dict[str, int] = {}
        self._clock = RecordedClock()
        self._untimed_trades_ns: list[int] = []
        """Trade times (ns since the epoch) of loaded frames without a receive time."""
        self._bulk: tuple[int, int] | None = None
        self._trades: dict[str, _History] = {}
        self._aggregates: dict[str, _History] = {}
        self._clients: set[_Client] = set()
        self._offline = 0
        self._truncate = 0
        self._refuse = 0
        self._forced: deque[tuple[int, float]] = deque()
        self._weights: dict[str, _WeightAccount] = {}
        self._changed = asyncio.Event()
        self._drained = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._market: asyncio.Task[None] | None = None
        self._port: int | None = None
        self._clock_origin: tuple[float, int] | None = None
        self._syncs = 0

    # -- contract -------------------------------------------------------------------------

    def load(self, messages: Iterable[RecordedMessage]) -> None:
        """Queue recorded frames behind those already loaded."""
        for message in messages:
            frame = _frame_from(message)
            if frame is None:
                self.skipped += 1
                continue
            if frame.symbol is not None and frame.stream is not None and frame.aggregate is not None:
                if frame.received_ns is None:
                    self._untimed_trades_ns.append(int(frame.aggregate["T"]) * 1_000_000)
                self._symbols.setdefault(frame.symbol)
                kind = frame.stream.split("@", 1)[1]
                self._stream_kinds[kind] = self._stream_kinds.get(kind, 0) + 1
            self._pending.append(frame)
        self._bulk = recording_bulk(self._untimed_trades_ns)
        if self._pending and self.frames_published == 0:
            self._clock.start_at(next(filter(None, map(self._recorded_ns, self._pending)), None))
        self._drained.clear()
        self._notify()

    def recorded_clock(self) -> Callable[[], datetime]:
        """The recorded receive time of the last frame sent (aware UTC); see the module docstring."""
        return self._clock.now

    def _recorded_ns(self, frame: _Frame) -> int | None:
        """A frame's time on the recording's clock: its receive time, else its trade time within the bulk."""
        if frame.received_ns is not None:
            return frame.received_ns
        if frame.aggregate is None or self._bulk is None:
            return None
        trade_ns = int(frame.aggregate["T"]) * 1_000_000
        return trade_ns if self._bulk[0] <= trade_ns <= self._bulk[1] else None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on ``host:port`` (0 picks a free port) and start the market."""
        app = web.Application()
        app.router.add_get("/ws/{stream}", self._websocket)
        app.router.add_get("/stream", self._websocket)
        for prefix in _REST_PREFIXES:
            app.router.add_get(f"{prefix}/historicalTrades", self._historical_trades)
            app.router.add_get(f"{prefix}/aggTrades", self._agg_trades)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self._port = int(self._runner.addresses[0][1])
        self._market = asyncio.create_task(self._run_market(), name="binance simulator market")

    @property
    def port(self) -> int:
        """The port the server listens on (after ``start()``)."""
        if self._port is None:
            raise RuntimeError("the simulator is not started; await start() first")
        return self._port

    def connector_settings(self) -> dict[str, Any]:
        """Settings pointing ``BinanceConnector`` at this simulator (all loaded symbols).

        The trade-time window stays the connector's default: pass ``recorded_clock()`` as the
        connector's ``wall_clock`` so recorded trade times are judged against the recording.
        """
        stream = max(self._stream_kinds, key=self._stream_kinds.__getitem__) if self._stream_kinds else "trade"
        return {
            "exchange": self.exchange,
            "symbols": list(self._symbols),
            "stream": stream,
            "base_url": f"ws://127.0.0.1:{self.port}",
            "rest_url": f"http://127.0.0.1:{self.port}",
            "rest_path_prefix": "/api/v3",
        }

    async def wait_drained(self, timeout: float) -> bool:
        """True once every loaded frame was published and sent to its subscribers."""
        try:
            await asyncio.wait_for(self._drained.wait(), timeout=timeout)
        except TimeoutError:
            return False
        return True

    async def stop(self) -> None:
        """Stop the market, close every connection (1001 going away) and stop listening."""
        if self._market is not None:
            self._market.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._market
            self._market = None
        for client in list(self._clients):
            await client.ws.close(code=1001, message=b"server shutdown")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- fault injection ------------------------------------------------------------------

    def drop_connections(self, missed_frames: int = 0) -> None:
        """Cut every connection now (no close frame); the next ``missed_frames`` stream frames
        are then published while nobody is connected: on REST only, never on the websocket."""
        self._offline += missed_frames
        for client in list(self._clients):
            transport = client.request.transport
            if transport is not None:
                transport.abort()
            self._clients.discard(client)
        self._notify()

    def inject_raw(self, text: str) -> None:
        """Queue ``text`` (sent verbatim to every connected client) behind the frames already loaded."""
        self._pending.append(_Frame(None, text, text, None))
        self._drained.clear()
        self._notify()

    def truncate_next(self, count: int) -> None:
        """Send the next ``count`` stream frames cut in half (their trades stay on REST)."""
        self._truncate += count

    def stall(self) -> None:
        """Connected clients get nothing more: no frames, no pings, no pongs."""
        for client in self._clients:
            client.stalled = True
        self._notify()

    def refuse_connections(self, count: int) -> None:
        """Answer the next ``count`` websocket upgrade requests with HTTP 503."""
        self._refuse += count

    def force_rest_status(self, status: int, count: int = 1, retry_after_s: float = 1.0) -> None:
        """Answer the next ``count`` REST requests with ``status`` (429 or 418) and ``Retry-After``."""
        if status not in (418, 429):
            raise ValueError(f"force_rest_status supports 418 and 429, got {status}")
        self._forced.extend([(status, retry_after_s)] * count)

    # -- market ---------------------------------------------------------------------------

    def _notify(self) -> None:
        self._changed.set()

    async def _wait_until(self, condition: Callable[[], bool]) -> None:
        while not condition():
            self._changed.clear()
            await self._changed.wait()

    def _has_reader(self) -> bool:
        return any(not client.stalled for client in self._clients)

    async def _run_market(self) -> None:
        published = 0
        while True:
            if not self._pending:
                self._drained.set()
                await self._wait_until(lambda: bool(self._pending))
                continue
            if self.speed is None:
                await self._wait_until(lambda: self._offline > 0 or self._has_reader())
            else:
                await self._pace(self._pending[0])
            frame = self._pending.popleft()
            self._publish(frame)
            published += 1
            self.frames_published += 1
            if published % _FAIRNESS_BATCH == 0:
                await asyncio.sleep(0)
            if frame.stream is not None and self._offline > 0:
                self._offline -= 1
                self._clock.sent(self._recorded_ns(frame))
                continue
            truncated = frame.stream is not None and self._truncate > 0
            if truncated:
                self._truncate -= 1
            recipients = [
                client
                for client in self._clients
                if not client.stalled and (frame.stream is None or frame.stream in client.streams)
            ]
            if recipients or not self._has_reader():
                self._clock.sent(self._recorded_ns(frame))
            delivered = False
            for client in recipients:
                try:
                    await client.ws.send_str(self._text(frame, client, truncated))
                    delivered = True
                except (ConnectionError, RuntimeError):
                    self._clients.discard(client)
            self.frames_sent += int(delivered)
            if delivered and self.speed is None:
                await self._sync_clients()

    async def _sync_clients(self) -> None:
        """Wait until every reading client has read what was sent: it answered a ping sent after it."""
        self._syncs += 1
        readers = [c for c in list(self._clients) if not c.stalled and not c.ws.closed]
        await sync_clients(
            ((c.sync, c.ws.ping) for c in readers), f"clock-sync {self._syncs}".encode(), self.sync_timeout_s
        )

    @staticmethod
    def _text(frame: _Frame, client: _Client, truncated: bool) -> str:
        text = frame.combined if client.combined else frame.bare
        return text[: len(text) // 2] if truncated else text

    async def _pace(self, frame: _Frame) -> None:
        assert self.speed is not None
        if frame.received_ns is None:
            return
        if self._clock_origin is None:
            self._clock_origin = (time.monotonic(), frame.received_ns)
        started, first_ns = self._clock_origin
        due = started + (frame.received_ns - first_ns) / 1e9 / self.speed
        if (wait := due - time.monotonic()) > 0:
            await asyncio.sleep(wait)

    def _publish(self, frame: _Frame) -> None:
        if frame.symbol is None:
            return
        if frame.trade is not None:
            self._trades.setdefault(frame.symbol, _History("id")).add(frame.trade)
        if frame.aggregate is not None:
            self._aggregates.setdefault(frame.symbol, _History("a")).add(frame.aggregate)

    # -- websocket ------------------------------------------------------------------------

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        self.connection_attempts.append(time.monotonic())
        if self._refuse > 0:
            self._refuse -= 1
            return web.Response(status=503, text="Service Unavailable")
        if "stream" in request.match_info:
            streams, combined = [request.match_info["stream"].lower()], False
        else:
            streams = [name.lower() for name in request.query.get("streams", "").split("/") if name]
            combined = True
        if len(streams) > MAX_STREAMS_PER_CONNECTION:
            return _error(400, -1, f"at most {MAX_STREAMS_PER_CONNECTION} streams per connection")
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        client = _Client(ws, request, list(dict.fromkeys(streams)), combined)
        self._clients.add(client)
        self._notify()
        pinger = asyncio.create_task(self._ping(client))
        try:
            async for message in ws:
                if message.type == WSMsgType.PONG and client.sync.answered(message.data):
                    client.last_pong = time.monotonic()
                    continue
                if not self._count_incoming(client):
                    await ws.close(code=1008, message=b"Too many messages")
                    break
                if message.type == WSMsgType.PING and not client.stalled:
                    await ws.pong(message.data)
                elif message.type == WSMsgType.PONG:
                    client.last_pong = time.monotonic()
                    self.pongs_received += 1
                elif message.type == WSMsgType.TEXT and not client.stalled:
                    await ws.send_str(json.dumps(self._control(client, message.data)))
        finally:
            pinger.cancel()
            client.sync.release()
            self.close_codes.append(ws.close_code)
            self._clients.discard(client)
            self._notify()
        return ws

    def _count_incoming(self, client: _Client) -> bool:
        now = time.monotonic()
        client.incoming.append(now)
        while client.incoming and client.incoming[0] <= now - 1.0:
            client.incoming.popleft()
        return len(client.incoming) <= self.max_incoming_per_s

    def _control(self, client: _Client, text: str) -> dict[str, Any]:
        try:
            request = json.loads(text)
        except ValueError:
            return {"error": {"code": 3, "msg": "Invalid JSON: expected a request object"}, "id": None}
        request_id = request.get("id") if isinstance(request, dict) else None
        method = request.get("method") if isinstance(request, dict) else None
        params = request.get("params", []) if isinstance(request, dict) else None
        if not isinstance(method, str) or not isinstance(params, list):
            return {"error": {"code": 2, "msg": "Invalid request: unknown or missing method/params"}, "id": request_id}
        self.control_messages.append((time.monotonic(), method))
        names = [str(name).lower() for name in params]
        if method == "SUBSCRIBE":
            client.streams.extend(name for name in names if name not in client.streams)
            if len(client.streams) > MAX_STREAMS_PER_CONNECTION:
                del client.streams[MAX_STREAMS_PER_CONNECTION:]
                return {"error": {"code": 2, "msg": "Too many streams on this connection"}, "id": request_id}
            return {"result": None, "id": request_id}
        if method == "UNSUBSCRIBE":
            client.streams[:] = [name for name in client.streams if name not in names]
            return {"result": None, "id": request_id}
        if method == "LIST_SUBSCRIPTIONS":
            return {"result": list(client.streams), "id": request_id}
        return {"error": {"code": 2, "msg": f"Invalid request: unknown method {method!r}"}, "id": request_id}

    async def _ping(self, client: _Client) -> None:
        while not client.ws.closed:
            await asyncio.sleep(self.ping_interval_s)
            if client.stalled:
                continue
            if time.monotonic() - client.last_pong > self.pong_timeout_s:
                await client.ws.close(code=1008, message=b"Pong timeout")
                return
            with contextlib.suppress(ConnectionError, RuntimeError):
                await client.ws.ping(b"binance-simulator")

    # -- REST -----------------------------------------------------------------------------

    def _charge(self, request: web.Request, weight: int) -> web.Response | dict[str, str]:
        """Headers for an allowed request, or the 429/418 answer."""
        now = time.time()
        account = self._weights.setdefault(request.remote or "unknown", _WeightAccount())
        minute = int(now // 60)
        if account.minute != minute:
            account.minute, account.used = minute, 0
        if self._forced:
            status, retry_after = self._forced.popleft()
            return _error(status, -1003, "Too many requests (forced by the simulator).", self._retry(retry_after))
        if account.banned_until > now:
            retry = self._retry(account.banned_until - now)
            return _error(418, -1003, "Way too much request weight used; IP banned.", retry)
        if account.limited_until > now:
            account.violations += 1
            if account.violations >= self.ban_after_violations:
                account.banned_until = now + self.ban_seconds
                return _error(418, -1003, "IP banned for ignoring 429 responses.", self._retry(self.ban_seconds))
            retry = self._retry(account.limited_until - now)
            return _error(429, -1003, "Too many requests; wait for Retry-After.", retry)
        if account.used + weight > self.weight_limit_per_minute:
            account.limited_until = (minute + 1) * 60.0
            return _error(
                429,
                -1003,
                f"Too much request weight used; current limit is {self.weight_limit_per_minute} request weight "
                "per 1 MINUTE.",
                self._retry(account.limited_until - now),
            )
        account.used += weight
        account.violations = 0
        return {"X-MBX-USED-WEIGHT-1M": str(account.used), "X-MBX-USED-WEIGHT": str(account.used)}

    @staticmethod
    def _retry(seconds: float) -> dict[str, str]:
        return {"Retry-After": str(max(1, math.ceil(seconds)))}

    def _query(self, request: web.Request, names: tuple[str, ...]) -> web.Response | dict[str, int | str]:
        symbol = request.query.get("symbol", "")
        if not symbol:
            return _error(400, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
        if symbol.upper() not in self._symbols:
            return _error(400, -1121, "Invalid symbol.")
        parsed: dict[str, int | str] = {"symbol": symbol.upper(), "limit": 500}
        for name in names:
            value = request.query.get(name)
            if value is None:
                continue
            if not value.lstrip("-").isdigit():
                return _error(400, -1100, f"Illegal characters found in parameter '{name}'.")
            parsed[name] = int(value)
        limit = parsed["limit"]
        assert isinstance(limit, int)
        if not 1 <= limit <= 1000:
            return _error(400, -1130, "Data sent for parameter 'limit' is not valid.")
        return parsed

    async def _historical_trades(self, request: web.Request) -> web.Response:
        query = self._query(request, ("limit", "fromId"))
        if isinstance(query, web.Response):
            return query
        charged = self._charge(request, _WEIGHT["historicalTrades"])
        if isinstance(charged, web.Response):
            return charged
        history = self._trades.get(str(query["symbol"]), _History("id"))
        return web.json_response(self._select(history, query), headers=charged)

    async def _agg_trades(self, request: web.Request) -> web.Response:
        query = self._query(request, ("limit", "fromId", "startTime", "endTime"))
        if isinstance(query, web.Response):
            return query
        start, end = query.get("startTime"), query.get("endTime")
        if isinstance(start, int) and isinstance(end, int) and not 0 <= end - start <= _MAX_AGG_RANGE_MS:
            return _error(400, -1127, "More than 1 hours between startTime and endTime.")
        charged = self._charge(request, _WEIGHT["aggTrades"])
        if isinstance(charged, web.Response):
            return charged
        history = self._aggregates.get(str(query["symbol"]), _History("a"))
        return web.json_response(self._select(history, query), headers=charged)

    @staticmethod
    def _select(history: _History, query: Mapping[str, int | str]) -> list[dict[str, Any]]:
        limit = int(query["limit"])
        records = history.records
        time_key = "time" if history.id_key == "id" else "T"
        start, end, from_id = query.get("startTime"), query.get("endTime"), query.get("fromId")
        if from_id is None and start is None and end is None:
            return records[-limit:]
        first = bisect.bisect_left(history.ids, int(from_id)) if from_id is not None else 0
        selected = []
        for record in records[first:]:
            if start is not None and record[time_key] < int(start):
                continue
            if end is not None and record[time_key] > int(end):
                break
            selected.append(record)
            if len(selected) == limit:
                break
        return selected
