"""The short soak: two trading days (a half day before Thanksgiving and the early close after it)
of the real orchestrator and API on the paper exchange at 300x, with the exchange's faults,
SIGKILLs of the daemon and of the whole box, a card stopped midway, and a 3:2 AAPL split and a
$0.25 KO dividend announced the evening before the second day. Nothing may be lost, sent twice,
miscounted or missing, and the cards get exactly the shares and cash the broker applied to the
account. The long version is the benchmark ``bench/soak.py``."""
from __future__ import annotations

import pytest

from bench.soak import Soak, SoakOptions

pytestmark = pytest.mark.slow(75)


def test_two_trading_days_of_faults_kills_a_split_and_a_dividend_lose_nothing(tmp_path, stocks_db_template):
    summary = Soak(SoakOptions(days=2, speed=300, seed=3, start="2026-11-25T19:00:00Z", daemon_kills=2,
                               box_kills=1, workdir=tmp_path / "soak", stocks_template=stocks_db_template)).run()
    assert summary["trading_days"] == 2 and summary["last_day"] == "2026-11-27"
    assert summary["kills"] == {"daemon": 2, "whole_box": 1}
    assert sum(summary["faults"].values()) >= 10
    assert summary["fills"] >= 20, "the cards must actually trade through the faults"
    assert summary["lost_fills"] == 0, summary["lost_fill_ids"]
    assert summary["duplicate_orders"] == 0
    assert summary["fill_qty_mismatches"] == 0
    assert summary["position_mismatches"] == [], summary["positions"]
    assert summary["missing_bars"] == 0, summary["missing_bar_examples"]
    assert summary["transactions"] == summary["card_fills"] >= summary["fills"]  # cards on one ticker share a fill
    assert summary["api"]["server_errors_5xx"] == 0
    assert summary["tracebacks"] == 0
    split, dividend = summary["corporate_actions"]
    assert (split["symbol"], split["ratio"], split["ex_date"]) == ("AAPL", "3:2", "2026-11-27")
    assert (dividend["symbol"], dividend["rate"], dividend["ex_date"]) == ("KO", 0.25, "2026-11-27")
    assert split["applied_at"] == dividend["applied_at"] == "2026-11-27T14:30:00Z"
    assert split["cards"] >= 1 and split["shares_before"]["broker"] >= 7  # the hold card's 7 at least
    assert split["shares_before"]["cards"] == split["shares_before"]["broker"]
    assert split["shares_after"]["cards"] == split["shares_after"]["broker"] == split["shares_before"]["broker"] * 1.5
    assert dividend["cards"] >= 1 and dividend["shares_before"]["cards"] == dividend["shares_before"]["broker"] >= 7
    assert dividend["cash"]["cards"] == dividend["cash"]["broker"] == round(dividend["shares_before"]["broker"] * 0.25, 2)
    assert summary["dividends_credited"] == {"cards": dividend["cash"]["broker"], "broker": dividend["cash"]["broker"]}
    assert summary["corporate_action_mismatches"] == []
    exits = summary["clean_exits"]
    assert (exits["orchestrator"], exits["exchange"]) == (0, 0) and exits["api"] is not None
