"""All SQL for system.db, by concern, behind the one name the spec gives it.

The ledger is split into modules of one concern each; this module re-exports their public
functions so every caller (and the spec's ``system_db_manager.get_transactions(...)``) keeps
one name:

- ``connection``: ``get_connection``, ``atomic``, ``LedgerError`` and the shared checks;
- ``cards``: cards created, stopped and listed, and their parameters;
- ``transactions``: fills and their totals (shares, trade count, net invested) and history reads;
- ``orders``: the order journal's SQL and its state table (``orchestra.net_order`` is its only writer);
- ``positions``: a card's position, the one definition (imported as a module, not re-exported);
- ``corporate_actions``: splits and dividends per card;
- ``decisions``: each card's recent decisions, refusals and errors;
- ``capital``: deposits into and withdrawals from a running card;
- ``controls``: the account-wide pause, each card's limits and trips, the marks they are checked against;
- ``config``: configuration, the PIN, the ledger's id and heartbeats.

The manager records what the broker filled; it does not police cash (the caller checks
allocations before an order is sent), but it refuses impossible rows: shorting, non-positive
shares or prices, trades on stopped or unknown cards.
"""
from __future__ import annotations

from system_databse.connection import (TIMESTAMP_FORMAT, TICKER_PATTERN, LedgerError, default_db_path,
                                       ledger_stamp, get_connection, atomic, normalize_ticker)
from system_databse.config import (PIN_PATTERN, DEFAULT_PIN, get_config, set_config, get_pin, set_pin,
                                   check_pin, pin_is_default, scrub_wal,
                                   get_ledger_id, write_heartbeat, get_heartbeat)
from system_databse.cards import (generate_display_name, create_algorithm, stop_algorithm, get_algorithm,
                                  get_all_algorithms, set_algorithm_parameters, get_algorithm_parameters,
                                  get_all_algorithm_parameters)
from system_databse.transactions import (record_buy, record_sell, get_transactions, get_transactions_by_card,
                                         get_recent_transactions, get_position_totals,
                                         get_all_position_totals, get_transactions_between,
                                         get_ledger_versions, get_daily_trade_totals, get_recent_fills)
from system_databse.orders import (OPEN_STATES, TRANSITIONS, OrderStateError, get_order,
                                   get_open_orders, open_order_tickers, get_order_events, record_broker_count,
                                   get_allocations, get_net_orders, get_orders)
from system_databse.decisions import (DECISIONS_KEPT, DECISION_KINDS, record_decisions, get_decisions)
from system_databse.capital import (CAPITAL_MOVE_KINDS, WithdrawalTooLarge, amount_cents, deposit, withdraw,
                                    get_capital_moves)
from system_databse.controls import (PAUSED_BY, ON_TRIP, LIMIT_FIELDS, LIMITS, get_pause, pause_trading,
                                     resume_trading, orders_sent_since, check_limits, set_card_limits,
                                     get_card_limits, get_all_card_limits, trip_card, end_cooldown, resume_card,
                                     get_marks, save_marks, trades_since, newest_sales)
from system_databse.corporate_actions import (CORPORATE_ACTION_KINDS, position_at, corporate_action_effects,
                                              record_corporate_action, get_corporate_action_effects,
                                              get_corporate_action_effects_by_card)

__all__ = [
    "TIMESTAMP_FORMAT",
    "TICKER_PATTERN",
    "LedgerError",
    "default_db_path",
    "ledger_stamp",
    "get_connection",
    "atomic",
    "normalize_ticker",
    "PIN_PATTERN",
    "DEFAULT_PIN",
    "get_config",
    "set_config",
    "get_pin",
    "set_pin",
    "check_pin",
    "pin_is_default",
    "scrub_wal",
    "get_ledger_id",
    "write_heartbeat",
    "get_heartbeat",
    "generate_display_name",
    "create_algorithm",
    "stop_algorithm",
    "get_algorithm",
    "get_all_algorithms",
    "set_algorithm_parameters",
    "get_algorithm_parameters",
    "get_all_algorithm_parameters",
    "record_buy",
    "record_sell",
    "get_transactions",
    "get_transactions_by_card",
    "get_recent_transactions",
    "get_position_totals",
    "get_all_position_totals",
    "get_transactions_between",
    "get_ledger_versions",
    "get_daily_trade_totals",
    "get_recent_fills",
    "OPEN_STATES",
    "TRANSITIONS",
    "OrderStateError",
    "get_order",
    "get_open_orders",
    "open_order_tickers",
    "get_order_events",
    "record_broker_count",
    "get_allocations",
    "get_net_orders",
    "get_orders",
    "DECISIONS_KEPT",
    "DECISION_KINDS",
    "record_decisions",
    "get_decisions",
    "PAUSED_BY",
    "ON_TRIP",
    "LIMIT_FIELDS",
    "LIMITS",
    "get_pause",
    "pause_trading",
    "resume_trading",
    "orders_sent_since",
    "check_limits",
    "set_card_limits",
    "get_card_limits",
    "get_all_card_limits",
    "trip_card",
    "end_cooldown",
    "resume_card",
    "get_marks",
    "save_marks",
    "trades_since",
    "newest_sales",
    "CAPITAL_MOVE_KINDS",
    "WithdrawalTooLarge",
    "amount_cents",
    "deposit",
    "withdraw",
    "get_capital_moves",
    "CORPORATE_ACTION_KINDS",
    "position_at",
    "corporate_action_effects",
    "record_corporate_action",
    "get_corporate_action_effects",
    "get_corporate_action_effects_by_card",
]
