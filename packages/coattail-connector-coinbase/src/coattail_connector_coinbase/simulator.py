"""A local Coinbase Exchange: the websocket feed and the public REST trades on 127.0.0.1.

Runs on the caller's asyncio event loop (tests, the producer's replay mode, benchmarks).
It speaks Coinbase's wire protocol: a client must send
``{"type": "subscribe", "product_ids": [...], "channels": [...]}`` within
``subscribe_timeout`` (5 s, like Coinbase) or gets an ``error`` message and is
disconnected; a valid subscription is answered with a ``subscriptions`` message and,
for ``matches``, a ``last_match`` per product that already traded. Recorded frames are
then served in order, filtered to each client's products and channels; subscribers of
``heartbeat`` get ``{"type": "heartbeat", "sequence", "last_trade_id", "product_id",
"time"}`` every ``heartbeat_interval`` seconds per product. The websocket and
``GET /products/{product_id}/trades`` (Coinbase cursor pagination) share one port.

``recorded_clock()`` is the connector's ``wall_clock`` in a replay: the recorded receive
time of the last frame sent to a client or made while none was connected (where the
recording has none: its trade time, when within the bulk of the recording's trade times,
``recording_span()``; a frame without either leaves the clock as it was). The connector
judges trade times by its default window against that clock, so a 2021 recording replays
while an absurd ``time`` in it is rejected. After each
frame sent, the feed pings every client it sent to and waits for the pong (at most
``sync_timeout_s``; a client that did not answer is not waited for again until it has), so
the feed, and the clock, move on only once the clients have read the frame.

The market moves only while a client is subscribed, so a run is deterministic: frames are
"made" one by one as they are sent. Frames made while no client is connected (see
``Faults.drop_connection_at``) are never resent on the websocket; their trades are
served by REST like every trade made so far.

Example::

    simulator = CoinbaseSimulator(Faults(drop_messages={120}))
    simulator.load(read_recording(Path("tests/data/coinbase/ws/cryptofeed_COINBASE.ws.28.0")))
    await simulator.start()
    connector = CoinbaseConnector(settings=simulator.connector_settings(), wall_clock=simulator.recorded_clock())
    ...
    await simulator.wait_drained(timeout=10)
    await simulator.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import WSMsgType, web

from coattail_connector_coinbase.normalize import parse_time
from coattail_framework.recordings import RecordedMessage
from coattail_framework.simulator import ExchangeSimulator, ReadSync, RecordedClock, ns_from_utc, sync_clients

LOG = logging.getLogger(__name__)

CHANNEL_OF_TYPE = {
    "match": "matches",
    "last_match": "matches",
    "l2update": "level2",
    "snapshot": "level2",
    "ticker": "ticker",
    "received": "full",
    "open": "full",
    "done": "full",
    "change": "full",
    "activate": "full",
    "status": "status",
}
CHANNELS = frozenset({*CHANNEL_OF_TYPE.values(), "heartbeat"})
GARBAGE = "\x00\x01 not json {{"
MAX_PAGE = 1000
SPAN_GAP = timedelta(hours=1)
"""Trade times further than this from the rest of a recording's do not widen its span."""


@dataclass
class Faults:
    """Faults to inject; frame indices count the loaded frames from 0, in load order."""

    refuse_connections: int = 0
    """The first N websocket handshakes get HTTP 503."""
    drop_connection_at: dict[int, int] = field(default_factory=dict)
    """After frame i is sent: drop every connection (no close frame), then make the given
    number of following frames while nobody is connected (missed on the websocket)."""
    drop_messages: set[int] = field(default_factory=set)
    """Frames made but never sent (a sequence / trade id gap for the client)."""
    garbage_before: set[int] = field(default_factory=set)
    """Send a non-JSON frame to every subscribed client before frame i."""
    truncate: set[int] = field(default_factory=set)
    """Send only the first half of frame i's JSON."""
    repeat_after: dict[int, int] = field(default_factory=dict)
    """After frame i, send frame j (j < i) again: an older sequence."""
    stall_at: int | None = None
    """Before frame i, every connected client goes silent (no frames, no heartbeats) with
    its connection left open; frames resume for the next client that subscribes."""


@dataclass
class SimulatorSession:
    """One websocket connection as the simulator saw it (monotonic seconds)."""

    number: int
    connected_at: float
    subscribed_at: float | None = None
    product_ids: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    closed_at: float | None = None
    close_code: int | None = None
    """The websocket close code (None when the TCP connection was dropped without one)."""


@dataclass
class _Frame:
    index: int
    text: str
    message: dict[str, Any] | None
    product_id: str | None
    channel: str | None
    received_ns: int | None = None
    trade_time: datetime | None = None


@dataclass
class _Client:
    websocket: web.WebSocketResponse
    request: web.Request
    session: SimulatorSession
    subscriptions: dict[str, set[str]] = field(default_factory=dict)
    stalled: bool = False
    sync: ReadSync = field(default_factory=ReadSync)
    """The clock-sync ping awaiting its pong (see the module docstring)."""

    def wants(self, frame: _Frame) -> bool:
        if frame.channel is None:
            return True
        return frame.product_id in self.subscriptions.get(frame.channel, set())


@dataclass
class _Product:
    sequence: int | None = None
    last_trade: dict[str, Any] | None = None
    trades: list[dict[str, Any]] = field(default_factory=list)


def _bulk(times: list[datetime]) -> tuple[datetime, datetime]:
    """First and last of the sorted ``times`` around their median with no gap over ``SPAN_GAP``.

    A hostile frame dated years away does not stretch a recording's span.
    """
    low = high = len(times) // 2
    while low > 0 and times[low] - times[low - 1] <= SPAN_GAP:
        low -= 1
    while high < len(times) - 1 and times[high + 1] - times[high] <= SPAN_GAP:
        high += 1
    return times[low], times[high]


def _utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class CoinbaseSimulator(ExchangeSimulator):
    """Coinbase Exchange's feed and public trades endpoint on 127.0.0.1."""

    def __init__(
        self,
        faults: Faults | None = None,
        *,
        heartbeat_interval: float = 1.0,
        subscribe_timeout: float = 5.0,
        frame_interval: float = 0.0,
        sync_timeout_s: float = 1.0,
    ) -> None:
        self.faults = faults or Faults()
        self.heartbeat_interval = heartbeat_interval
        self.subscribe_timeout = subscribe_timeout
        self.frame_interval = frame_interval
        self.sync_timeout_s = sync_timeout_s
        """Longest wait for a client's answer to a clock-sync ping (see the module docstring)."""
        self.sessions: list[SimulatorSession] = []
        """Every websocket connection accepted so far, in order."""
        self.refused = 0
        self.attempts: list[float] = []
        """Monotonic time of every websocket handshake attempt, refused ones included."""
        self.made = 0
        """Frames made so far (sent, dropped or missed)."""
        self._frames: list[_Frame] = []
        self._received_ns: list[int] = []
        self._trade_times: list[datetime] = []
        self._products: dict[str, _Product] = {}
        self._clients: list[_Client] = []
        self._client_ready = asyncio.Event()
        self._drained = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._feed: asyncio.Task[None] | None = None
        self._port = 0
        self._clock = RecordedClock()
        self._span: tuple[datetime, datetime] | None = None
        self._syncs = 0

    def load(self, messages: Iterable[RecordedMessage]) -> None:
        """Queue recorded frames; the recording's own ``subscriptions`` answers are left out."""
        for recorded in messages:
            message: dict[str, Any] | None = None
            if not recorded.malformed:
                try:
                    decoded = json.loads(recorded.payload)
                except (ValueError, RecursionError):  # served as it is: the client must cope
                    decoded = None
                message = decoded if isinstance(decoded, dict) else None
            if message is not None and message.get("type") == "subscriptions":
                continue
            product_id = message.get("product_id") if message else None
            if isinstance(product_id, str):
                self._products.setdefault(product_id, _Product())
            channel = CHANNEL_OF_TYPE.get(str(message.get("type"))) if message else None
            if recorded.received_ns is not None:
                self._received_ns.append(recorded.received_ns)
            trade_time = None
            if message is not None and channel == "matches":
                with contextlib.suppress(ValueError):  # not a valid trade: the connector rejects it
                    trade_time = parse_time(message.get("time"))
                    self._trade_times.append(trade_time)
            self._frames.append(
                _Frame(
                    len(self._frames),
                    recorded.payload,
                    message,
                    product_id if isinstance(product_id, str) else None,
                    channel,
                    recorded.received_ns,
                    trade_time,
                )
            )
        self._span = self.recording_span()
        if self.made == 0:
            self._clock.start_at(next(filter(None, map(self._recorded_ns, self._frames)), None))

    def recorded_clock(self) -> Callable[[], datetime]:
        """The recorded receive time of the last frame sent (aware UTC); see the module docstring."""
        return self._clock.now

    def _recorded_ns(self, frame: _Frame) -> int | None:
        """A frame's time on the recording's clock: its receive time, else its trade time within the span."""
        if frame.received_ns is not None:
            return frame.received_ns
        if frame.trade_time is None or self._span is None or not self._span[0] <= frame.trade_time <= self._span[1]:
            return None
        return ns_from_utc(frame.trade_time)

    @property
    def products(self) -> list[str]:
        """Product ids found in the loaded frames (the only ones a client may subscribe to)."""
        return sorted(self._products)

    def find_frames(self, message_type: str, product_id: str | None = None) -> list[int]:
        """Indices (as ``Faults`` counts them) of loaded frames of a type, optionally one product's."""
        return [
            frame.index
            for frame in self._frames
            if frame.message is not None
            and frame.message.get("type") == message_type
            and (product_id is None or frame.product_id == product_id)
        ]

    def frame(self, index: int) -> dict[str, Any] | None:
        """The decoded loaded frame at ``index`` (None for a frame that is not a JSON object)."""
        return self._frames[index].message

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on ``host:port`` (a free port when 0) and start the feed."""
        app = web.Application()
        app.router.add_get("/", self._serve_websocket)
        app.router.add_get("/products/{product_id}/trades", self._serve_trades)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self._host, self._port = self._runner.addresses[0][:2]
        self._feed = asyncio.create_task(self._run_feed(), name="coinbase-simulator-feed")

    def connector_settings(self) -> dict[str, Any]:
        """``url``, ``rest_url``, ``symbols`` (every loaded product): ``CoinbaseConnector``'s.

        The trade time window stays the connector's default: pass ``recorded_clock()`` as its ``wall_clock``.
        """
        base = f"{self._host}:{self._port}"
        return {"url": f"ws://{base}/", "rest_url": f"http://{base}", "symbols": self.products}

    def recording_span(self) -> tuple[datetime, datetime] | None:
        """First and last receive time of the loaded frames (trade times without receive times); None if empty."""
        if self._received_ns:
            first, last = min(self._received_ns), max(self._received_ns)
            return (
                datetime.fromtimestamp(first / 1e9, UTC),
                datetime.fromtimestamp(last / 1e9, UTC),
            )
        if self._trade_times:
            return _bulk(sorted(self._trade_times))
        return None

    async def wait_drained(self, timeout: float) -> bool:
        """True once every loaded frame was made (and sent unless a fault said otherwise)."""
        try:
            await asyncio.wait_for(self._drained.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def stop(self) -> None:
        """Stop the feed, close every connection (going away) and stop listening."""
        if self._feed is not None:
            self._feed.cancel()
            await asyncio.gather(self._feed, return_exceptions=True)
        for client in list(self._clients):
            await client.websocket.close(code=1001, message=b"server shutting down")
        if self._runner is not None:
            await self._runner.cleanup()

    # -- the market -------------------------------------------------------------------

    async def _run_feed(self) -> None:
        missed_while_down = 0
        for frame in self._frames:
            if frame.index == self.faults.stall_at:
                for client in self._active():
                    client.stalled = True
                LOG.info("simulator: stalling every client before frame %d", frame.index)
            nobody_connected = missed_while_down > 0
            if nobody_connected:
                missed_while_down -= 1
            else:
                while not self._active():
                    self._client_ready.clear()
                    await self._client_ready.wait()
            self._make(frame)
            sent = not nobody_connected and frame.index not in self.faults.drop_messages
            if nobody_connected or (sent and any(client.wants(frame) for client in self._active())):
                self._clock.sent(self._recorded_ns(frame))
            if sent:
                await self._send(frame)
                await self._sync_clients()
            if frame.index in self.faults.drop_connection_at:
                missed_while_down = self.faults.drop_connection_at[frame.index]
                for client in self._active():
                    LOG.info("simulator: dropping connection %d after frame %d", client.session.number, frame.index)
                    client.stalled = True
                    transport = client.request.transport
                    if transport is not None:
                        transport.abort()
            await asyncio.sleep(self.frame_interval)
        self._drained.set()

    def _make(self, frame: _Frame) -> None:
        self.made += 1
        message = frame.message
        if message is None or frame.product_id is None:
            return
        product = self._products[frame.product_id]
        sequence = message.get("sequence")
        if isinstance(sequence, int) and (product.sequence is None or sequence > product.sequence):
            product.sequence = sequence
        trade_id = message.get("trade_id")
        is_new_trade = not product.trades or (isinstance(trade_id, int) and trade_id > product.trades[-1]["trade_id"])
        if frame.channel == "matches" and isinstance(trade_id, int) and is_new_trade:
            product.trades.append(message)
            product.last_trade = message

    async def _sync_clients(self) -> None:
        """Wait until every reading client has read what was sent: it answered a ping sent after it."""
        self._syncs += 1
        clients = ((c.sync, c.websocket.ping) for c in self._active())
        await sync_clients(clients, f"clock-sync {self._syncs}".encode(), self.sync_timeout_s)

    def _active(self) -> list[_Client]:
        return [c for c in self._clients if c.subscriptions and not c.stalled and not c.websocket.closed]

    async def _send(self, frame: _Frame) -> None:
        for client in self._active():
            if frame.index in self.faults.garbage_before:
                await self._send_text(client, GARBAGE)
            if not client.wants(frame):
                continue
            text = frame.text[: len(frame.text) // 2] if frame.index in self.faults.truncate else frame.text
            await self._send_text(client, text)
            if frame.index in self.faults.repeat_after:
                await self._send_text(client, self._frames[self.faults.repeat_after[frame.index]].text)

    @staticmethod
    async def _send_text(client: _Client, text: str) -> None:
        try:
            await client.websocket.send_str(text)
        except (ConnectionError, RuntimeError) as error:
            LOG.info("simulator: send to connection %d failed: %s", client.session.number, error)
            client.stalled = True

    # -- the websocket feed ----------------------------------------------------------

    async def _serve_websocket(self, request: web.Request) -> web.StreamResponse:
        self.attempts.append(time.monotonic())
        if self.refused < self.faults.refuse_connections:
            self.refused += 1
            return web.Response(status=503, text="Service Unavailable (simulated)")
        websocket = web.WebSocketResponse(compress=False, autoping=False)
        await websocket.prepare(request)
        client = _Client(websocket, request, SimulatorSession(len(self.sessions) + 1, time.monotonic()))
        self.sessions.append(client.session)
        self._clients.append(client)
        heartbeats = asyncio.create_task(self._heartbeats(client))
        try:
            await self._converse(client)
        finally:
            heartbeats.cancel()
            client.sync.release()
            client.session.closed_at = time.monotonic()
            client.session.close_code = websocket.close_code
            self._clients.remove(client)
            if not websocket.closed:
                await websocket.close()
        return websocket

    async def _converse(self, client: _Client) -> None:
        websocket = client.websocket
        deadline = client.session.connected_at + self.subscribe_timeout
        while not websocket.closed:
            timeout = deadline - time.monotonic() if not client.subscriptions else None
            try:
                message = await websocket.receive(timeout=timeout)
            except TimeoutError:
                await self._error(client, "Failed to subscribe", "no subscribe message within 5 seconds of connecting")
                await websocket.close(code=1008, message=b"subscribe timeout")
                return
            if message.type == WSMsgType.PING:
                await websocket.pong(message.data)
                continue
            if message.type == WSMsgType.PONG:
                client.sync.answered(message.data)
                continue
            if message.type != WSMsgType.TEXT:
                return
            await self._on_request(client, message.data)

    async def _on_request(self, client: _Client, text: str) -> None:
        try:
            request = json.loads(text)
        except ValueError:
            await self._error(client, "Malformed JSON", f"cannot parse {text[:100]!r}")
            return
        kind = request.get("type") if isinstance(request, dict) else None
        if kind not in ("subscribe", "unsubscribe"):
            await self._error(client, "Failed to subscribe", f"unknown message type {kind!r}")
            return
        try:
            wanted = self._parse_subscription(request)
        except ValueError as error:
            await self._error(client, "Failed to subscribe", str(error))
            return
        subscriptions = {channel: set(products) for channel, products in client.subscriptions.items()}
        for channel, products in wanted.items():
            current = subscriptions.setdefault(channel, set())
            if kind == "subscribe":
                current.update(products)
            else:
                current.difference_update(products)
        subscriptions = {channel: products for channel, products in subscriptions.items() if products}
        await self._acknowledge(client, subscriptions, wanted if kind == "subscribe" else {})
        client.subscriptions = subscriptions
        if kind == "subscribe" and client.session.subscribed_at is None:
            client.session.subscribed_at = time.monotonic()
        client.session.product_ids = tuple(sorted(set().union(*subscriptions.values())))
        client.session.channels = tuple(sorted(subscriptions))
        self._client_ready.set()

    def _parse_subscription(self, request: dict[str, Any]) -> dict[str, set[str]]:
        default_products = request.get("product_ids", [])
        channels = request.get("channels")
        if not isinstance(channels, list) or not channels:
            raise ValueError("channels must be a non-empty list")
        wanted: dict[str, set[str]] = {}
        for entry in channels:
            name, products = (
                (entry.get("name"), entry.get("product_ids", default_products))
                if isinstance(entry, dict)
                else (entry, default_products)
            )
            if name not in CHANNELS:
                raise ValueError(f"{name} is not a valid channel")
            if not isinstance(products, list) or not products:
                raise ValueError(f"You need to specify at least one product ID for channel {name}")
            for product in products:
                if product not in self._products:
                    raise ValueError(f"{product} is not a valid product")
            wanted.setdefault(name, set()).update(products)
        return wanted

    async def _acknowledge(
        self, client: _Client, subscriptions: dict[str, set[str]], added: dict[str, set[str]]
    ) -> None:
        channels = [{"name": name, "product_ids": sorted(products)} for name, products in subscriptions.items()]
        await self._send_text(client, json.dumps({"type": "subscriptions", "channels": channels}))
        for product_id in sorted(added.get("matches", set())):
            last_trade = self._products[product_id].last_trade
            if last_trade is not None:
                await self._send_text(client, json.dumps({**last_trade, "type": "last_match"}))

    async def _error(self, client: _Client, message: str, reason: str) -> None:
        await self._send_text(client, json.dumps({"type": "error", "message": message, "reason": reason}))

    async def _heartbeats(self, client: _Client) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            if client.stalled:
                continue
            for product_id in sorted(client.subscriptions.get("heartbeat", set())):
                product = self._products[product_id]
                if product.sequence is None or product.last_trade is None:
                    continue
                heartbeat = {
                    "type": "heartbeat",
                    "last_trade_id": product.last_trade["trade_id"],
                    "product_id": product_id,
                    "sequence": product.sequence,
                    "time": _utc_now(),
                }
                await self._send_text(client, json.dumps(heartbeat))

    # -- the REST trades endpoint -----------------------------------------------------

    async def _serve_trades(self, request: web.Request) -> web.Response:
        product = self._products.get(request.match_info["product_id"])
        if product is None:
            return web.json_response({"message": "NotFound"}, status=404)
        query = request.query
        try:
            limit = int(query.get("limit", MAX_PAGE))
            before = int(query["before"]) if "before" in query else None
            after = int(query["after"]) if "after" in query else None
        except ValueError:
            return web.json_response({"message": "Invalid limit, before or after: integers expected"}, status=400)
        if not 1 <= limit <= MAX_PAGE:
            return web.json_response({"message": f"Invalid limit: must be 1..{MAX_PAGE}"}, status=400)
        trades = product.trades
        if before is not None:
            page = [t for t in trades if t["trade_id"] > before][:limit]
        elif after is not None:
            page = [t for t in trades if t["trade_id"] < after][-limit:]
        else:
            page = trades[-limit:]
        body = [
            {"time": t["time"], "trade_id": t["trade_id"], "price": t["price"], "size": t["size"], "side": t["side"]}
            for t in reversed(page)
        ]
        headers = {"CB-BEFORE": str(body[0]["trade_id"]), "CB-AFTER": str(body[-1]["trade_id"])} if body else {}
        return web.json_response(body, headers=headers)
