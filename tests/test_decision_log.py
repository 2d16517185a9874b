"""The daemon keeps each card's recent decisions, refusals and errors for the wall's detail view."""
from __future__ import annotations

from system_databse import system_db_manager as manager
from tests.fixtures.orchestrator import run_orchestrator
from tests.test_orchestrator_cli import desk, exchange  # noqa: F401 - fixtures

__all__ = ["desk", "exchange"]


def test_one_cycle_stores_each_cards_decision_refusal_or_error_with_its_reason(desk):
    env, cards, system_db = desk
    result = run_orchestrator(env, "--once")
    assert result.returncode == 0, result.stderr
    conn = manager.get_connection(system_db)
    hold = manager.get_decisions(cards["hold"], conn=conn)
    assert [(d["kind"], d["action"], d["shares"]) for d in hold] == [("decision", "buy", 7)]
    assert hold[0]["reason"].startswith("buy 7 shares at ~$") and hold[0]["minute"].startswith("2026-11-23T1")
    assert hold[0]["price"] > 0
    greedy = manager.get_decisions(cards["greedy"], conn=conn)
    assert [(d["kind"], d["action"], d["requested_action"], d["requested_shares"]) for d in greedy] == [
        ("refused", "hold", "buy", 1_000_000)]
    assert greedy[0]["reason"].startswith("refused: buy 1000000 shares at ~$")
    raiser = manager.get_decisions(cards["raiser"], conn=conn)
    assert [d["kind"] for d in raiser] == ["error"] and "boom from raiser" in raiser[0]["reason"]
    missing = manager.get_decisions(cards["missing"], conn=conn)
    assert "unknown algorithm 'no_such_algorithm'" in missing[0]["reason"]
    assert manager.get_decisions(cards["stopped"], conn=conn) == []  # stopped cards do not decide


def test_a_dry_run_stores_no_decision(desk):
    env, _, system_db = desk
    assert run_orchestrator(env, "--once", "--dry-run").returncode == 0
    conn = manager.get_connection(system_db)
    assert conn.execute("SELECT COUNT(*) FROM card_decisions").fetchone()[0] == 0
