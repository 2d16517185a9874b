"""Alpaca's trading and market-data REST APIs (``/v2/...``) plus the ``/_sim`` controls.

Shapes, status codes and error bodies follow what Alpaca returns, so the unchanged
``alpaca-py`` clients work against it by URL override.
"""
from __future__ import annotations

import hmac
import logging
from datetime import datetime
from typing import TYPE_CHECKING

import pandas as pd
from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from . import corporate_actions, data_api
from .broker import ApiError, order_json
from .clock import NEW_YORK, parse_utc, utc_z
from .rules import RATE_LIMIT_MESSAGE, RateLimiter, check_wash_trade
from .controls import ControlError

if TYPE_CHECKING:
    from .server import Exchange

logger = logging.getLogger(__name__)

GATEWAY_PAGES = {
    502: "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n",
    504: "<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n<center><h1>504 Gateway Time-out</h1></center>\r\n</body>\r\n</html>\r\n",
}
SERVER_ERRORS = {500: (50010000, "internal server error"), 503: (50310000, "service unavailable")}


def create_app(exchange: "Exchange") -> Flask:
    app = Flask(__name__)
    app.json.sort_keys = False
    app.config["EXCHANGE"] = exchange
    limiter = RateLimiter()

    @app.before_request
    def guard():
        if not request.path.startswith(("/v2/", "/v1/")):
            return None
        if not _authorised(exchange):
            return _unauthorised(request.path)
        if request.path.startswith("/v2/stocks/"):
            exchange.data_requests.append({"at": utc_z(exchange.clock.now()), "path": request.path,
                                           "args": request.args.to_dict()})
        elif request.path.startswith("/v2/"):  # the trading API's budget; market data is not counted
            allowed, g.rate_headers = limiter.take(exchange.key, exchange.controls.rate_limit_per_minute)
            if not allowed:
                return jsonify({"code": 42910000, "message": RATE_LIMIT_MESSAGE}), 429
        failure = exchange.controls.take_failure(request.path)
        if failure:
            status, after = failure
            if not after:
                return server_error(status)
            g.fail_with = status
        return None

    @app.after_request
    def lose_answer(response: Response):
        status = g.pop("fail_with", None)
        answer = server_error(status) if status else response
        answer.headers.update(g.pop("rate_headers", None) or {})
        return answer

    @app.errorhandler(ApiError)
    def api_error(error: ApiError):
        return jsonify(error.body), error.status

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        return jsonify({"code": error.code * 100000, "message": error.description or error.name}), error.code

    _account_routes(app, exchange)
    _order_routes(app, exchange)
    _market_hours_routes(app, exchange)
    data_api.register(app, exchange)
    corporate_actions.register(app, exchange)
    _sim_routes(app, exchange)
    return app


def server_error(status: int) -> Response:
    if status in GATEWAY_PAGES:
        return Response(GATEWAY_PAGES[status], status=status, mimetype="text/html")
    code, message = SERVER_ERRORS[status]
    response = jsonify({"code": code, "message": message})
    response.status_code = status
    return response


def _authorised(exchange: "Exchange") -> bool:
    key = request.headers.get("APCA-API-KEY-ID", "")
    secret = request.headers.get("APCA-API-SECRET-KEY", "")
    return hmac.compare_digest(key.encode(), exchange.key.encode()) and \
        hmac.compare_digest(secret.encode(), exchange.secret.encode())


def _unauthorised(path: str):
    """Trading answers 401 "unauthorized."; market data answers 403 "forbidden", as Alpaca does."""
    if path.startswith(("/v2/stocks", "/v1/corporate-actions")):
        return jsonify({"message": "forbidden"}), 403
    return jsonify({"message": "unauthorized."}), 401


def new_york(moment: datetime, micros: bool = False) -> str:
    """Alpaca's clock format: Eastern time with offset (``2026-11-23T09:30:00-05:00``)."""
    local = pd.Timestamp(moment).tz_convert(NEW_YORK)
    return local.isoformat(timespec="microseconds" if micros else "seconds")


def _account_routes(app: Flask, exchange: "Exchange") -> None:
    broker, market = exchange.broker, exchange.market

    @app.get("/v2/account")
    def account():
        return jsonify(exchange.account_json())

    @app.get("/v2/assets")
    def assets():
        status = request.args.get("status")
        listed = [_asset_json(a) for a in market.assets()
                  if status is None or (status == "active") == a.active]
        return jsonify(listed)

    @app.get("/v2/assets/<symbol_or_id>")
    def asset(symbol_or_id: str):
        found = market.asset(symbol_or_id)
        if found is None:
            raise ApiError(404, f"asset not found for {symbol_or_id}", 40410000)
        return jsonify(_asset_json(found))

    @app.get("/v2/positions")
    def positions():
        with broker.lock:
            return jsonify([exchange.position_json(p) for p in broker.open_positions()])

    @app.get("/v2/positions/<symbol_or_id>")
    def position(symbol_or_id: str):
        found = market.asset(symbol_or_id)
        with broker.lock:
            for held in broker.open_positions():
                if found and held.symbol == found.symbol:
                    return jsonify(exchange.position_json(held))
        raise ApiError(404, "position does not exist", 40410000)


def _order_routes(app: Flask, exchange: "Exchange") -> None:
    broker = exchange.broker

    @app.post("/v2/orders")
    def submit_order():
        body = request.get_json(silent=True)
        if body is None:
            raise ApiError(400, "request body format is invalid", 40010000)
        with broker.lock:  # render before another request can settle it further
            if exchange.controls.wash_trade_rejection:
                check_wash_trade(broker, body)
            order = broker.submit(body, exchange.controls.order_behaviour())
            answer = order_json(order)
        logger.info("order %s %s %s x%s accepted", order.client_order_id, order.side, order.symbol, order.qty)
        return jsonify(answer)

    @app.get("/v2/orders")
    def list_orders():
        with broker.lock:
            return jsonify([order_json(o) for o in _filtered_orders(broker.list_orders())])

    @app.get("/v2/orders:by_client_order_id")
    def order_by_client_id():
        client_order_id = request.args.get("client_order_id", "")
        with broker.lock:
            return jsonify(order_json(broker.find_by_client_id(client_order_id)))

    @app.get("/v2/orders/<order_id>")
    def order_by_id(order_id: str):
        with broker.lock:
            return jsonify(order_json(broker.find(order_id)))

    @app.delete("/v2/orders/<order_id>")
    def cancel_order(order_id: str):
        broker.cancel(order_id)
        return "", 204

    @app.delete("/v2/orders")
    def cancel_all():
        answers = []
        with broker.lock:
            for order in broker.list_orders():
                if order.is_open:
                    broker.cancel(order.id)
                    answers.append({"id": order.id, "status": 200, "body": order_json(order)})
        return jsonify(answers), 207


def _market_hours_routes(app: Flask, exchange: "Exchange") -> None:
    calendar = exchange.calendar

    @app.get("/v2/clock")
    def clock():
        now = exchange.clock.now()
        return jsonify({
            "timestamp": new_york(now, micros=True), "is_open": calendar.is_open(now),
            "next_open": new_york(calendar.next_open(now)), "next_close": new_york(calendar.next_close(now)),
        })

    @app.get("/v2/calendar")
    def market_calendar():
        start = _date_arg("start", calendar.first_day)
        end = _date_arg("end", calendar.last_day)
        days = []
        for day in calendar.sessions_between(start, end):
            opening, closing = calendar.session_bounds(day)
            days.append({
                "date": day, "open": new_york(opening)[11:16], "close": new_york(closing)[11:16],
                "session_open": "0400", "session_close": "2000" if new_york(closing)[11:13] == "16" else "1700",
                "settlement_date": calendar.settlement_date(day),
            })
        return jsonify(days)


def _date_arg(name: str, default: str) -> str:
    raw = request.args.get(name)
    if not raw:
        return default
    try:
        return datetime.strptime(raw[:10], "%Y-%m-%d").strftime("%Y-%m-%d")
    except ValueError:
        raise ApiError(400, f"invalid {name}: {raw}", 40010000) from None


def _filtered_orders(orders: list) -> list:
    status = request.args.get("status", "open")
    if status not in ("open", "closed", "all"):
        raise ApiError(422, "invalid status", 40010001)
    try:
        limit = int(request.args.get("limit", 50))
    except ValueError:
        raise ApiError(422, "invalid limit", 40010001) from None
    if not 1 <= limit <= 500:
        raise ApiError(422, "limit must be between 1 and 500", 40010001)
    symbols = {s.strip().upper() for s in request.args.get("symbols", "").split(",") if s.strip()}
    side = request.args.get("side")
    after, until = (_time_arg(name) for name in ("after", "until"))
    chosen = [o for o in orders
              if (status == "all" or (status == "open") == o.is_open)
              and (not symbols or o.symbol in symbols) and (not side or o.side == side)
              and (after is None or o.created_at > after) and (until is None or o.created_at < until)]
    chosen.sort(key=lambda o: o.created_at, reverse=request.args.get("direction", "desc") != "asc")
    return chosen[:limit]


def _time_arg(name: str):
    raw = request.args.get(name)
    if not raw:
        return None
    try:
        return parse_utc(raw)
    except ValueError:
        raise ApiError(422, f"invalid {name}", 40010001) from None


def _asset_json(asset) -> dict:
    return {
        "id": asset.id, "class": "us_equity", "exchange": asset.exchange, "symbol": asset.symbol,
        "name": asset.name, "status": "active" if asset.active else "inactive",
        "tradable": asset.active, "marginable": asset.active, "maintenance_margin_requirement": 30,
        "margin_requirement_long": "30", "margin_requirement_short": "100",
        "shortable": asset.active, "easy_to_borrow": asset.active, "fractionable": asset.active,
        "attributes": [],
    }


def _sim_routes(app: Flask, exchange: "Exchange") -> None:
    @app.get("/_sim/state")
    def state():
        return jsonify(exchange.state())

    @app.post("/_sim/control")
    def control():
        body = request.get_json(silent=True)
        try:
            result = exchange.apply_control(body)
        except ControlError as error:
            return jsonify({"error": str(error)}), 400
        return jsonify(result)

    @app.get("/_sim/health")
    def health():
        return jsonify({"ok": True})
