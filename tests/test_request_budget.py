"""The daemon's one request budget: under the broker's limit, obeying its headers and 429s."""
from __future__ import annotations

import pytest

from shared.request_budget import RequestBudget


class FakeTime:
    def __init__(self):
        self.now = 1000.0
        self.slept = []

    def clock(self):
        return self.now

    def wall(self):
        return 1_800_000_000.0 + self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def time_():
    return FakeTime()


def _budget(time_, per_minute):
    return RequestBudget(per_minute, clock=time_.clock, wall=time_.wall, sleep=time_.sleep)


def test_the_181st_request_of_a_minute_waits_for_the_first_to_leave_the_window(time_):
    budget = _budget(time_, 180)
    for _ in range(180):
        budget.acquire()
        time_.now += 0.1
    assert time_.slept == [] and budget.used_last_minute() == 180
    budget.acquire()
    assert 41.9 < sum(time_.slept) < 42.1  # the first request, at t=0, leaves the window at t=60
    assert budget.requests == 181 and budget.used_last_minute() <= 180


def test_a_429_pauses_every_request_until_the_brokers_reset(time_):
    budget = _budget(time_, 180)
    budget.acquire()
    reset = time_.wall() + 20
    budget.observe(429, {"X-Ratelimit-Limit": "200", "X-Ratelimit-Remaining": "0", "X-Ratelimit-Reset": str(reset)})
    budget.acquire()
    assert 20 <= sum(time_.slept) <= 21 and budget.refused == 1


def test_the_brokers_remaining_zero_pauses_before_a_429_happens(time_):
    budget = _budget(time_, 180)
    budget.observe(200, {"X-Ratelimit-Remaining": "0", "X-Ratelimit-Reset": str(time_.wall() + 5)})
    budget.acquire()
    assert 5 <= sum(time_.slept) <= 6 and budget.refused == 0


def test_a_429_without_headers_backs_off_more_each_time(time_):
    budget = _budget(time_, 180)
    budget.observe(429, {})
    budget.acquire()
    first = sum(time_.slept)
    budget.observe(429, {})
    budget.acquire()
    assert sum(time_.slept) - first > first > 0


def test_answers_with_budget_left_change_nothing(time_):
    budget = _budget(time_, 180)
    budget.observe(200, {"X-Ratelimit-Remaining": "150", "X-Ratelimit-Reset": str(time_.wall() + 30)})
    budget.acquire()
    assert time_.slept == []
