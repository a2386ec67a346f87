"""The weekly allowance reset: once per company and week, on the company's own day and hour,
under any number of concurrent runs, with missed weeks caught up once (real Postgres, clock moved
with time-machine)."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import select, update

from app import db
from app.cron import runner
from app.cron.models import CronRun
from app.features.company.models import CompanySettings
from app.features.wallets import weekly_reset as reset
from app.features.wallets.scheduled import weekly_reset
from tests.recognition_helpers import assert_ledger_consistent
from tests.test_weekly_reset_helpers import (
    compliment_balances,
    make_company,
    reset_rows,
    resets,
    spend_allowance,
)


def at(moment: datetime) -> time_machine.travel:
    return time_machine.travel(moment, tick=False)


def test_current_period_is_the_latest_renewal_day_from_local_midnight():
    sp = "America/Sao_Paulo"  # UTC-3
    # Monday 2027-01-04 02:59 UTC is still Sunday 23:59 in São Paulo: last week's Monday.
    assert reset.current_period(datetime(2027, 1, 4, 2, 59, tzinfo=UTC), sp, 1) == (
        date(2026, 12, 28),
        datetime(2026, 12, 28, 3, tzinfo=UTC),
    )
    assert reset.current_period(datetime(2027, 1, 4, 3, 0, tzinfo=UTC), sp, 1) == (
        date(2027, 1, 4),
        datetime(2027, 1, 4, 3, tzinfo=UTC),
    )
    # Tokyo (UTC+9), Friday: Thursday 15:00 UTC is Friday 00:00 local.
    assert reset.current_period(datetime(2027, 1, 7, 15, tzinfo=UTC), "Asia/Tokyo", 5)[0] == date(2027, 1, 8)
    assert reset.current_period(datetime(2027, 1, 7, 14, 59, tzinfo=UTC), "Asia/Tokyo", 5)[0] == date(
        2027, 1, 1
    )


def test_ten_concurrent_runs_reset_each_company_exactly_once(settings):
    companies = [make_company(f"Co {i}", users=300)[0] for i in range(3)]
    with at(datetime(2027, 1, 4, 6, tzinfo=UTC)):  # Monday: every company's first reset
        weekly_reset()
    changed = {company_id: spend_allowance(company_id) for company_id in companies}

    barrier = threading.Barrier(10)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait(timeout=30)
            runner.run_task("weekly-reset", trigger="cli")
        except BaseException as exc:  # reported below
            errors.append(exc)

    with at(datetime(2027, 1, 11, 4, tzinfo=UTC)):  # next Monday, 01:00 in São Paulo
        threads = [threading.Thread(target=run) for _ in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert errors == []

    for company_id in companies:
        [first, second] = resets(company_id)
        assert (first.period_start, second.period_start) == (date(2027, 1, 4), date(2027, 1, 11))
        assert second.wallets_changed == changed[company_id] == 151  # 301 wallets, every 2nd spent
        assert reset_rows(company_id, "2027-01-11") == changed[company_id]
        assert set(compliment_balances(company_id)) == {100}
    with db.session_scope() as session:
        runs = list(session.scalars(select(CronRun).where(CronRun.task == "weekly-reset")))
    assert len(runs) == 10 and {run.outcome for run in runs} == {"succeeded"}
    assert sum(run.summary["companies_reset"] for run in runs) == 3
    assert sum(run.summary["wallets_changed"] for run in runs) == sum(changed.values())
    assert_ledger_consistent()


@pytest.mark.slow
def test_each_company_resets_on_its_own_local_day_and_hour_across_a_week(settings):
    zones = {
        "America/Sao_Paulo": 1,  # Monday
        "Europe/Lisbon": 3,  # Wednesday
        "Asia/Tokyo": 5,  # Friday
    }
    ids = {tz: make_company(tz, timezone=tz, renewal_day=day, users=20)[0] for tz, day in zones.items()}
    start = datetime(2027, 1, 3, 12, tzinfo=UTC)  # a Sunday
    with at(start):
        weekly_reset()  # catches up each company's current week once
    for company_id in ids.values():
        assert len(resets(company_id)) == 1
        spend_allowance(company_id)

    hour = start
    for _ in range(7 * 24):
        hour += timedelta(hours=1)
        with at(hour):
            weekly_reset()
            weekly_reset()  # a second trigger in the same hour changes nothing

    for tz, company_id in ids.items():
        [_, week] = resets(company_id)
        local = week.reset_at.astimezone(ZoneInfo(tz))
        assert local.isoweekday() == zones[tz], (tz, local)
        assert (local.hour, local.minute) == (0, 0), (tz, local)
        assert week.period_start == local.date()
        assert week.due_at == week.reset_at
        assert week.wallets_changed == reset_rows(company_id, week.period_start.isoformat()) == 11
        assert set(compliment_balances(company_id)) == {100}
    assert {tz: resets(cid)[1].reset_at for tz, cid in ids.items()} == {
        "America/Sao_Paulo": datetime(2027, 1, 4, 3, tzinfo=UTC),
        "Europe/Lisbon": datetime(2027, 1, 6, 0, tzinfo=UTC),
        "Asia/Tokyo": datetime(2027, 1, 7, 15, tzinfo=UTC),
    }
    assert_ledger_consistent()


def test_a_reset_skipped_for_two_weeks_is_caught_up_once(settings):
    company_id, _ = make_company("Skipper", users=10)
    with at(datetime(2027, 1, 4, 5, tzinfo=UTC)):
        weekly_reset()
    spent = spend_allowance(company_id, every=1)
    # Two renewal moments (Jan 11, Jan 18) pass with no run at all.
    with at(datetime(2027, 1, 20, 10, tzinfo=UTC)):
        summary = weekly_reset()
        again = weekly_reset()
    with at(datetime(2027, 1, 24, 23, tzinfo=UTC)):  # still the same week (Sunday 20:00 local)
        later = weekly_reset()
    assert summary["companies_reset"] == 1 and summary["wallets_changed"] == spent == 11
    assert again["companies_reset"] == later["companies_reset"] == 0
    assert [r.period_start for r in resets(company_id)] == [date(2027, 1, 4), date(2027, 1, 18)]
    assert reset_rows(company_id, "2027-01-11") == 0
    assert reset_rows(company_id, "2027-01-18") == spent
    assert_ledger_consistent()


def test_moving_the_renewal_day_after_this_weeks_reset_does_not_reset_again(settings):
    company_id, _ = make_company("Mover", users=5)
    with at(datetime(2027, 1, 4, 5, tzinfo=UTC)):  # Monday reset
        weekly_reset()
    spend_allowance(company_id, every=1)
    with db.session_scope() as session:
        session.execute(
            update(CompanySettings).where(CompanySettings.company_id == company_id).values(renewal_day=3)
        )
    with at(datetime(2027, 1, 5, 12, tzinfo=UTC)):  # Tuesday: the "Wednesday week" began Dec 30
        assert weekly_reset()["companies_reset"] == 0
    with at(datetime(2027, 1, 6, 4, tzinfo=UTC)):  # Wednesday 01:00 local: the new day's reset
        assert weekly_reset()["companies_reset"] == 1
    assert [r.period_start for r in resets(company_id)] == [date(2027, 1, 4), date(2027, 1, 6)]


def test_inactive_companies_and_users_are_left_alone(settings):
    active, _ = make_company("Active", users=3)
    dormant, _ = make_company("Dormant", users=3)
    with at(datetime(2027, 1, 4, 5, tzinfo=UTC)):
        weekly_reset()
    spend_allowance(active, every=1)
    spend_allowance(dormant, every=1)
    from app.features.identity.models import Company, User

    with db.session_scope() as session:
        session.execute(update(Company).where(Company.id == dormant).values(is_active=False))
        gone = session.scalars(select(User.id).where(User.company_id == active).order_by(User.id)).first()
        session.execute(update(User).where(User.id == gone).values(is_active=False))
    with at(datetime(2027, 1, 11, 5, tzinfo=UTC)):
        summary = weekly_reset()
    assert summary["companies_reset"] == 1 and summary["wallets_changed"] == 3  # 4 wallets, one inactive
    assert sorted(compliment_balances(active)) == [93, 100, 100, 100]
    assert set(compliment_balances(dormant)) == {93}
    assert len(resets(dormant)) == 1
