"""The API's routes and its Lambda handler (API Gateway HTTP API, payload format 2.0).

Runs in the Lambda function (``coattail_api.app.handler``) and, unchanged, behind the
local server (``coattail-api serve --local``). Routing, query validation and CORS are
Powertools' (``APIGatewayHttpResolver`` with ``enable_validation``); logs are Powertools'
structured JSON with API Gateway's request id as ``correlation_id``.

Routes (all ``GET``, JSON, times ISO 8601 UTC):

- ``/alerts?symbol=&alert_type=&module_id=&severity=&since=&until=&limit=&cursor=`` —
  newest first. Reads index ``by_symbol`` when ``symbol`` is given, else ``by_type``
  (``alert_type``), else ``by_module`` (``module_id``); one of the three is required so
  that nothing scans. The other two and ``severity`` filter. ``since``/``until`` bound
  ``detected_at`` (inclusive). ``limit`` 1-500 (default 50).
- ``/alerts/{alert_id}`` — one alert, 404 when absent.
- ``/<path>`` for each alert type whose detector declares a view
  (``coattail_framework.plugins.AlertView``, read from the light ``coattail.detector_info``
  entry points at start; this process never imports a detector class or PySpark):
  ``listing`` — ``?symbol=&since=&until=&min_<key>=&limit=&cursor=``, that type's alerts,
  optionally only those whose numeric ``details.<key>`` is at least ``min_<key>``;
  ``latest_per_pair`` — ``?symbol=&since=``, the latest alert of that type per venue pair
  for a canonical ``BASE/QUOTE`` symbol; ``latest_per_key`` — ``?symbol=&since=``, the latest
  alert of that type per combination of the ``details`` values the view names, for a venue
  symbol, latest first. docs/API.md lists the routes of the shipped detectors.
- ``/health`` — the function runs and can read the table (503 when it cannot).

Hostile input is refused before anything reads the table: every string parameter has a
pattern and a length bound (at most 64 ASCII characters for what becomes a key value, far
inside DynamoDB's 1,024-byte sort key and 2,048-byte partition key limits; 2,048 for a
cursor), times must parse as ISO 8601 with a time zone and lie in 1970-2099 UTC, numbers
are bounded (which refuses NaN and infinities), cursors are signed, and no parameter name
or value, nor the path, may hold control characters or invalid Unicode.
A listing reads at most ``ApiSettings.read_budget`` items (``store.AlertStore.page``);
reaching it answers the alerts found so far with a ``next_cursor``.

Errors are JSON ``{"statusCode", "error", "message", "request_id"}``: 400 names the bad
parameter, 404 a missing alert or route, 405 (with ``Allow``) another method than ``GET``
on a route, 500 carries only the request id (the exception is logged with it); no stack
trace ever leaves the function.
"""

import functools
import json
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Annotated, Any, Literal

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, CORSConfig, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import BadRequestError, ServiceError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import AfterValidator, AwareDatetime, BeforeValidator

from coattail_api import __version__
from coattail_api.cursor import CursorCodec, InvalidCursorError, query_fingerprint
from coattail_api.models import Alert, AlertPage, Health, KeyBoard, KeyEntry, KeyValue, PairBoard, VenuePair
from coattail_api.settings import ApiSettings, load_settings
from coattail_api.store import AlertStore, IndexQuery, Item
from coattail_framework.aws import aws_client
from coattail_framework.errors import PluginError
from coattail_framework.plugins import AlertType, AlertView
from coattail_framework.registry import ModuleRegistry

SERVICE = "coattail-api"
LOGGER = Logger(service=SERVICE)

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2099, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
"""``since`` and ``until`` must lie in ``[EARLIEST, LATEST]`` (UTC, inclusive)."""
MAX_TIME_CHARS = 40
HEALTH_PROBE_KEY = "health-check"
READ_METHODS = ("GET",)
"""The methods every route answers; others get 405 with ``Allow``."""

_PATTERNS = {
    "symbol": r"^[A-Z0-9][A-Z0-9._/-]{1,31}$",
    "canonical": r"^[A-Z0-9]{1,15}/[A-Z0-9]{1,15}$",
    "alert_type": r"^[a-z][a-z0-9_]{1,63}$",
    "module_id": r"^[A-Z][A-Z0-9]{0,15}-[0-9]{3,8}$",
    "alert_id": r"^[0-9a-f]{32}$",
}
_MAX_CHARS = {"symbol": 32, "canonical": 31, "alert_type": 64, "module_id": 25, "alert_id": 32, "cursor": 2048}
"""Length bounds checked before the patterns, so an oversized value costs nothing to refuse."""
_ISO_TIME_SHAPE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}.*", re.ASCII | re.DOTALL)
_SHOWN_CHARS = 64
_HINTS = {
    "symbol": "must be an upper-case symbol such as BTCUSDT, BTC-USD or BTC/USD",
    "canonical": "must be a canonical BASE/QUOTE symbol such as BTC/USD",
    "alert_type": "must be a lower-case alert type (letters, digits, underscores)",
    "module_id": "must be a module id (upper-case prefix, '-', 3 to 8 digits)",
    "alert_id": "must be 32 lower-case hex characters",
    "since": "must be an ISO 8601 time with a time zone, e.g. 2024-08-08T23:58:01Z",
    "until": "must be an ISO 8601 time with a time zone, e.g. 2024-08-08T23:58:01Z",
}


def _iso_time_text(value: object) -> object:
    """Refuse what pydantic would read as a Unix time (``1723161600``) or a bare date."""
    if isinstance(value, str) and (len(value) > MAX_TIME_CHARS or not _ISO_TIME_SHAPE.fullmatch(value)):
        raise ValueError(_HINTS["since"])
    return value


def _in_time_range(moment: datetime) -> datetime:
    """``moment`` in UTC; refuses times outside ``[EARLIEST, LATEST]`` (and offsets that overflow)."""
    problem = f"must be from {EARLIEST:%Y-%m-%dT%H:%M:%SZ} to {LATEST:%Y-%m-%dT%H:%M:%SZ}"
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(problem) from None
    if not EARLIEST <= utc <= LATEST:
        raise ValueError(problem)
    return utc


def _bounded(name: str, **constraints: Any) -> Any:
    """A query parameter of pattern ``name``, length-checked first."""
    return Query(max_length=_MAX_CHARS[name], pattern=_PATTERNS[name], **constraints)


Severity = Literal["low", "medium", "high", "critical"]
QueryTime = Annotated[AwareDatetime, BeforeValidator(_iso_time_text), AfterValidator(_in_time_range)]
SymbolParam = Annotated[str | None, _bounded("symbol", description="venue or canonical symbol")]
VenueSymbolParam = Annotated[str, _bounded("symbol", description="venue symbol, e.g. BTCUSDT")]
AlertTypeParam = Annotated[str | None, _bounded("alert_type")]
ModuleIdParam = Annotated[str | None, _bounded("module_id")]
SeverityParam = Annotated[Severity | None, Query()]
TimeParam = Annotated[QueryTime | None, Query(description="ISO 8601 with time zone, 1970-2099; inclusive")]
LimitParam = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
CursorParam = Annotated[str | None, Query(min_length=1, max_length=_MAX_CHARS["cursor"])]
NotionalParam = Annotated[float, Query(ge=0, le=1e15, description="quote currency, e.g. USDT")]
CanonicalParam = Annotated[str, _bounded("canonical")]
AlertIdParam = Annotated[str, Path(max_length=_MAX_CHARS["alert_id"], pattern=_PATTERNS["alert_id"])]


def _error_response(
    status: HTTPStatus, message: str, request_id: str, headers: Mapping[str, str] | None = None
) -> Response[Any]:
    body = {"statusCode": status.value, "error": status.phrase, "message": message, "request_id": request_id}
    return Response(
        status_code=status.value,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body),
        headers=dict(headers or {}),
    )


def _shown(text: str) -> str:
    """``text`` safe to quote in an error: printable ASCII, at most ``_SHOWN_CHARS`` characters."""
    printable = "".join(char if " " <= char <= "~" else "?" for char in text[:_SHOWN_CHARS])
    return (printable + ("..." if len(text) > _SHOWN_CHARS else "")) or '""'


def _no_route(path: str) -> str:
    return f"no route {_shown(path)}; see docs/API.md"


def _route_pattern(rule: str) -> re.Pattern[str]:
    """A Powertools route rule (``/alerts/<alert_id>``) as a regex over one path."""
    return re.compile(re.sub(r"<\w+>", "[^/]+", re.escape(rule)))


def _validation_message(error: RequestValidationError, path: str, hints: Mapping[str, str]) -> str:
    """One ``name: problem`` per invalid parameter of the route at ``path``, without echoing internals.

    ``hints``: what a parameter must look like, by ``<route>.<name>`` or by ``name``."""
    problems = []
    for problem in error.errors():
        location = [str(part) for part in problem.get("loc", ())]
        name = location[1] if len(location) > 1 else (location[0] if location else "request")
        kind = problem.get("type", "")
        if kind in ("string_pattern_mismatch", "timezone_aware", "datetime_from_date_parsing", "datetime_parsing"):
            hint = hints.get(f"{path.strip('/')}.{name}") or hints.get(name) or problem.get("msg", "is invalid")
            problems.append(f"{name}: {hint}")
        elif kind == "value_error":
            problems.append(f"{name}: {problem.get('ctx', {}).get('error', 'is invalid')}")
        else:
            problems.append(f"{name}: {str(problem.get('msg', 'is invalid')).lower()}")
    return "; ".join(dict.fromkeys(problems))


def _time_order(since: datetime | None, until: datetime | None) -> None:
    """Each time was range-checked when parsed (``QueryTime``); here only their order."""
    if since is not None and until is not None and since > until:
        raise BadRequestError("since: must not be after until")


def _detail_number(item: Item, key: str) -> float | None:
    """The numeric ``details[key]`` of an alert, or None when absent or not a number (logged)."""
    value = json.loads(item["details"]).get(key)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    LOGGER.warning(
        "alert without the numeric details value its view filters on",
        extra={"alert_id": item["alert_id"], "alert_type": item["alert_type"], "details_key": key},
    )
    return None


def _detail_at_least(key: str, floor: float) -> Callable[[Item], bool]:
    """A predicate keeping alerts whose numeric ``details[key]`` is at least ``floor``."""

    def keep(item: Item) -> bool:
        value = _detail_number(item, key)
        return value is not None and value >= floor

    return keep


def _key_values(alert: Alert, alert_type: AlertType, names: tuple[str, ...]) -> tuple[KeyValue, ...] | None:
    """The alert's ``details`` values named by ``names``, or None (logged) when one disagrees
    with ``alert_type``'s declaration of that key (a nullable key may be absent: null)."""
    values = tuple(alert.details.get(name) for name in names)
    fields = [alert_type.field(name) for name in names]
    if all(field is not None and field.accepts(value) for field, value in zip(fields, values, strict=True)):
        return values
    LOGGER.warning(
        "alert whose details disagree with the key its view groups by",
        extra={"alert_id": alert.alert_id, "alert_type": alert.alert_type, "details_keys": list(names)},
    )
    return None


def _key_order(values: tuple[KeyValue, ...]) -> tuple[tuple[bool, KeyValue], ...]:
    """Sort key of one combination of key values: each value ascending, null last.

    Values at one position share their declared type (``_key_values``), so they compare."""
    return tuple((value is None, value) for value in values)


def installed_alert_types(registry: ModuleRegistry | None = None) -> tuple[AlertType, ...]:
    """The alert types the installed detectors declare (``coattail.detector_info`` only: no PySpark).

    A declaration that fails to load is logged and left out; its routes are then absent (404).
    """
    registry = registry or ModuleRegistry()
    infos = registry.detector_infos
    for failure in registry.failures:
        LOGGER.error(failure.describe())
    return tuple(alert_type for name in sorted(infos) for alert_type in infos[name].alert_types)


def _views(alert_types: Iterable[AlertType]) -> list[tuple[AlertType, AlertView]]:
    """The declared views, refusing two on one path (the API would not know which to serve)."""
    views: dict[str, tuple[AlertType, AlertView]] = {}
    reserved = {"alerts", "health"}
    for alert_type in alert_types:
        view = alert_type.view
        if view is None:
            continue
        if view.path in reserved or view.path in views:
            taken = "the API's own" if view.path in reserved else f"alert type {views[view.path][0].name!r}'s"
            raise PluginError(f"alert type {alert_type.name!r} declares view /{view.path}, which is {taken} route")
        views[view.path] = (alert_type, view)
    return [views[path] for path in sorted(views)]


def create_resolver(
    store: AlertStore, codec: CursorCodec, settings: ApiSettings, alert_types: Iterable[AlertType] | None = None
) -> APIGatewayHttpResolver:
    """The routes over ``store``; cursors signed by ``codec``; CORS from ``settings``; a route per
    declared view of ``alert_types`` (default: ``installed_alert_types()``)."""
    views = _views(installed_alert_types() if alert_types is None else alert_types)
    hints = {
        **_HINTS,
        **{f"{view.path}.symbol": _HINTS["canonical"] for _, view in views if view.kind == "latest_per_pair"},
    }
    origins = settings.cors_allow_origins
    cors = CORSConfig(allow_origin=origins[0], extra_origins=list(origins[1:]), max_age=600) if origins else None
    app = APIGatewayHttpResolver(cors=cors, enable_validation=True)
    allow = ", ".join((*READ_METHODS, "OPTIONS") if cors else READ_METHODS)
    routes: list[re.Pattern[str]] = []

    def read_route(rule: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """``app.get(rule)``, remembered so that other methods on ``rule`` answer 405."""
        routes.append(_route_pattern(rule))
        return app.get(rule)

    def request_id() -> str:
        return str(app.current_event.request_context.request_id)

    def check_request(allowed: tuple[str, ...]) -> None:
        """What Powertools' validation leaves to the route: the path and every query parameter
        printable text (no control characters or invalid Unicode), no unknown parameter.

        Catches what a lax parse let through (``limit=%095``) and what matched a route only
        thanks to ``$`` (``/health%0A``): 404 for the path, 400 naming the parameter.
        """
        path = app.current_event.raw_path
        if not path.isprintable():
            raise ServiceError(HTTPStatus.NOT_FOUND, _no_route(path))
        given = app.current_event.query_string_parameters or {}
        for name, value in sorted(given.items()):
            if not (name.isprintable() and value.isprintable()):
                raise BadRequestError(
                    f"{_shown(name)}: must be printable text (no control characters or invalid Unicode)"
                )
        unknown = sorted(set(given) - set(allowed))
        if unknown:
            takes = ", ".join(allowed) if allowed else "no parameters"
            raise BadRequestError(f"{_shown(unknown[0])}: unknown parameter; this route takes {takes}")

    def paged(
        route: str, query: IndexQuery, limit: int, cursor: str | None, floor: tuple[str, float] | None = None
    ) -> dict[str, Any]:
        fingerprint = query_fingerprint({"route": route, "floor": floor, **query.fingerprint_parts()})
        keep = _detail_at_least(*floor) if floor and floor[1] else None
        start_key = None
        if cursor is not None:
            try:
                start_key = codec.decode(cursor, fingerprint, query.start_key_attributes)
            except InvalidCursorError as error:
                raise BadRequestError(f"cursor: {error}") from None
        page = store.page(query, limit=limit, start_key=start_key, keep=keep)
        alerts = [Alert.from_item(item) for item in page.alerts]
        next_cursor = None if page.next_start_key is None else codec.encode(fingerprint, page.next_start_key)
        return AlertPage(alerts=alerts, count=len(alerts), next_cursor=next_cursor).model_dump(mode="json")

    @read_route("/alerts")
    def list_alerts(
        symbol: SymbolParam = None,
        alert_type: AlertTypeParam = None,
        module_id: ModuleIdParam = None,
        severity: SeverityParam = None,
        since: TimeParam = None,
        until: TimeParam = None,
        limit: LimitParam = DEFAULT_LIMIT,
        cursor: CursorParam = None,
    ) -> dict[str, Any]:
        check_request(("symbol", "alert_type", "module_id", "severity", "since", "until", "limit", "cursor"))
        _time_order(since, until)
        keys = {"symbol": symbol, "alert_type": alert_type, "module_id": module_id}
        index_for = {"symbol": "by_symbol", "alert_type": "by_type", "module_id": "by_module"}
        partition = next((name for name, value in keys.items() if value is not None), None)
        if partition is None:
            raise BadRequestError("symbol, alert_type or module_id: give at least one (queries never scan the table)")
        equals = {name: value for name, value in keys.items() if value is not None and name != partition}
        if severity is not None:
            equals["severity"] = severity
        query = IndexQuery(index_for[partition], str(keys[partition]), since, until, equals)
        return paged("alerts", query, limit, cursor)

    @read_route("/alerts/<alert_id>")
    def get_alert(alert_id: AlertIdParam) -> dict[str, Any]:
        check_request(())
        item = store.get(alert_id)
        if item is None:
            # A plain ServiceError: NotFoundError would reach the unknown-route handler.
            message = f"alert_id: no alert {alert_id} (it may never have existed, or it expired)"
            raise ServiceError(HTTPStatus.NOT_FOUND, message)
        return Alert.from_item(item).model_dump(mode="json")

    def listing_route(alert_type: AlertType, view: AlertView) -> None:
        """``GET /<view.path>``: ``alert_type``'s alerts, newest first, optionally over a floor."""
        floor_key = view.min_filter
        floor_name = f"min_{floor_key}" if floor_key else None
        allowed = ("symbol", "since", "until", *((floor_name,) if floor_name else ()), "limit", "cursor")
        floor_param = Annotated[
            float, Query(ge=0, le=1e15, alias=floor_name or "min", description=f"least details.{floor_key}")
        ]

        def list_view(
            symbol: SymbolParam = None,
            since: TimeParam = None,
            until: TimeParam = None,
            floor: floor_param = 0.0,
            limit: LimitParam = DEFAULT_LIMIT,
            cursor: CursorParam = None,
        ) -> dict[str, Any]:
            check_request(allowed)
            _time_order(since, until)
            if symbol is not None:
                query = IndexQuery("by_symbol", symbol, since, until, {"alert_type": alert_type.name})
            else:
                query = IndexQuery("by_type", alert_type.name, since, until)
            return paged(view.path, query, limit, cursor, (floor_key, floor) if floor_key else None)

        list_view.__name__ = f"list_{view.path.replace('-', '_')}"
        read_route(f"/{view.path}")(list_view)

    def latest_per_pair_route(alert_type: AlertType, view: AlertView) -> None:
        """``GET /<view.path>``: the latest ``alert_type`` alert per venue pair of one canonical symbol."""

        def latest_per_pair(symbol: CanonicalParam, since: TimeParam = None) -> dict[str, Any]:
            check_request(("symbol", "since"))
            query = IndexQuery("by_symbol", symbol, since, None, {"alert_type": alert_type.name})
            page = store.page(query, limit=settings.read_budget)
            latest: dict[str, VenuePair] = {}
            for item in page.alerts:
                pair = item["exchange"]
                if pair in latest:
                    continue
                exchange_a, _, exchange_b = pair.partition("|")
                latest[pair] = VenuePair(
                    exchange_pair=pair, exchange_a=exchange_a, exchange_b=exchange_b, latest=Alert.from_item(item)
                )
            board = PairBoard(
                symbol=symbol, pairs=[latest[pair] for pair in sorted(latest)], complete=page.next_start_key is None
            )
            return board.model_dump(mode="json")

        latest_per_pair.__name__ = f"latest_{view.path.replace('-', '_')}"
        read_route(f"/{view.path}")(latest_per_pair)

    def latest_per_key_route(alert_type: AlertType, view: AlertView) -> None:
        """``GET /<view.path>``: the latest ``alert_type`` alert of one venue symbol per combination
        of the ``details`` values named by ``view.key``, latest first."""

        def latest_per_key(symbol: VenueSymbolParam, since: TimeParam = None) -> dict[str, Any]:
            check_request(("symbol", "since"))
            query = IndexQuery("by_symbol", symbol, since, None, {"alert_type": alert_type.name})
            page = store.page(query, limit=settings.read_budget)
            latest: dict[tuple[KeyValue, ...], Alert] = {}
            for item in page.alerts:
                alert = Alert.from_item(item)
                values = _key_values(alert, alert_type, view.key)
                if values is not None:
                    latest.setdefault(values, alert)
            ordered = sorted(latest, key=_key_order)
            ordered.sort(key=lambda values: latest[values].detected_at, reverse=True)
            board = KeyBoard(
                symbol=symbol,
                entries=[
                    KeyEntry(key=dict(zip(view.key, values, strict=True)), latest=latest[values]) for values in ordered
                ],
                complete=page.next_start_key is None,
            )
            return board.model_dump(mode="json")

        latest_per_key.__name__ = f"latest_{view.path.replace('-', '_')}"
        read_route(f"/{view.path}")(latest_per_key)

    routes_of_kind = {
        "listing": listing_route,
        "latest_per_pair": latest_per_pair_route,
        "latest_per_key": latest_per_key_route,
    }
    for alert_type, view in views:
        routes_of_kind[view.kind](alert_type, view)

    @read_route("/health")
    def health() -> dict[str, Any]:
        check_request(())
        try:
            store.get(HEALTH_PROBE_KEY)
        except (BotoCoreError, ClientError):
            LOGGER.exception("health: the alert table cannot be read", extra={"table": settings.table_name})
            raise ServiceError(HTTPStatus.SERVICE_UNAVAILABLE, "the alert table cannot be read") from None
        return Health(status="ok", service=SERVICE, version=__version__, table=settings.table_name).model_dump()

    @app.exception_handler(RequestValidationError)
    def invalid_request(error: RequestValidationError) -> Response[Any]:
        message = _validation_message(error, app.current_event.raw_path, hints)
        return _error_response(HTTPStatus.BAD_REQUEST, message, request_id())

    @app.exception_handler(ServiceError)
    def service_error(error: ServiceError) -> Response[Any]:
        return _error_response(HTTPStatus(error.status_code), str(error.msg), request_id())

    @app.not_found
    def no_route(_: Exception) -> Response[Any]:
        path = app.current_event.raw_path
        method = app.current_event.http_method.upper()
        if method not in READ_METHODS and any(route.fullmatch(path) for route in routes):
            message = f"{_shown(method)} {_shown(path)}: method not allowed; this route answers {allow}"
            return _error_response(HTTPStatus.METHOD_NOT_ALLOWED, message, request_id(), {"Allow": allow})
        return _error_response(HTTPStatus.NOT_FOUND, _no_route(path), request_id())

    @app.exception_handler(Exception)
    def unexpected(error: Exception) -> Response[Any]:
        LOGGER.exception("unhandled error", extra={"request_id": request_id(), "path": app.current_event.raw_path})
        return _error_response(
            HTTPStatus.INTERNAL_SERVER_ERROR, "internal error; quote the request_id when reporting it", request_id()
        )

    return app


LambdaHandler = Callable[[Mapping[str, Any], LambdaContext], dict[str, Any]]


def create_handler(settings: ApiSettings, *, dynamodb_client: Any | None = None) -> LambdaHandler:
    """A Lambda handler over the table in ``settings`` (client from the default credential chain)."""
    client = dynamodb_client or aws_client("dynamodb", region=settings.region, endpoint_url=settings.endpoint_url)
    store = AlertStore(client, settings.table_name, read_budget=settings.read_budget)
    resolver = create_resolver(store, CursorCodec(settings.cursor_key.get_secret_value()), settings)

    @LOGGER.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
    def handle(event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        return resolver.resolve(dict(event), context)

    return handle


@functools.cache
def _configured_handler() -> LambdaHandler:
    return create_handler(load_settings())


def handler(event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
    """The Lambda entry point: settings from the environment, loaded on the first invocation."""
    return _configured_handler()(event, context)
