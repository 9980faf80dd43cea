"""The public intake page's protection (issue 12 item 10; spec I3), on SQLite and PostgreSQL.

Limits are per client address and practice-wide, counted in the database (so a reload, a new
browser or another replica changes nothing); the ceiling is high enough that one address cannot
fill it. A form-filling program that fills the hidden field is thanked but lands under Spam.
Reviewers reject, mark as spam, or un-spam many submissions at once, each audited.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from lib import intake, intake_limits
from lib.db import transaction
from lib.models import AuditEntry, IntakeRateEvent, IntakeSubmission
from lib.policy import PermissionDenied
from lib.timeutil import utcnow
from lib.validation import ValidationError
from tests.test_intake import count, submit
from tests.test_intake import staff as staff  # the fixture

HOME = "203.0.113.7"
NEIGHBOUR = "203.0.113.8"


def statuses(engine) -> list[str]:
    with transaction(engine) as session:
        return list(session.scalars(select(IntakeSubmission.status).order_by(IntakeSubmission.id)))


def test_one_address_may_send_only_a_few_forms_an_hour(engine, staff):
    now = utcnow()
    for minutes in range(intake_limits.ADDRESS_PER_HOUR):
        submit(engine, now=now - timedelta(minutes=50 - minutes), client_address=HOME)

    with pytest.raises(intake.RateLimited, match="already sent several times"):
        submit(engine, now=now, client_address=HOME)
    submit(engine, now=now, client_address=NEIGHBOUR)  # everyone else is still welcome

    assert count(engine, IntakeSubmission) == intake_limits.ADDRESS_PER_HOUR + 1
    # An hour after the first, there is room for one more.
    submit(engine, now=now + timedelta(minutes=11), client_address=HOME)


def test_one_address_can_never_fill_the_practice_wide_limit():
    assert intake_limits.ADDRESS_PER_HOUR < intake_limits.PRACTICE_PER_MINUTE


def test_an_ipv6_home_counts_as_one_address_by_its_64_network(engine, staff):
    now = utcnow()
    for n in range(intake_limits.ADDRESS_PER_HOUR):
        submit(engine, now=now, client_address=f"2001:db8:1:2::{n + 1:x}")
    with pytest.raises(intake.RateLimited):
        submit(engine, now=now, client_address="2001:db8:1:2:abcd::99")
    submit(engine, now=now, client_address="2001:db8:1:3::1")  # the next network


def test_addresses_are_kept_only_as_hashes_and_only_for_a_day(engine, staff):
    now = utcnow()
    submit(engine, now=now - timedelta(days=2), client_address=HOME)
    submit(engine, now=now, client_address="::ffff:203.0.113.7")  # the same, written as IPv6
    with transaction(engine) as session:
        keys = list(session.scalars(select(IntakeRateEvent.address_key)))
    assert keys == [intake_limits.address_key(HOME)]  # the two-day-old one is gone
    assert HOME not in keys[0] and len(keys[0]) == 64
    assert intake_limits.address_key("2001:db8:1:2::1") == intake_limits.address_key(
        "2001:db8:1:2:ffff::1"
    )
    assert intake_limits.address_key(None) == intake_limits.NO_ADDRESS
    assert intake_limits.address_key("127.0.0.1") == intake_limits.NO_ADDRESS
    assert intake_limits.address_key("not an address") == intake_limits.NO_ADDRESS


def test_without_an_address_only_the_practice_wide_limit_applies(engine, staff):
    """Streamlit gives no address for the machine itself (a kiosk on the server)."""
    now = utcnow()
    for _ in range(intake_limits.ADDRESS_PER_HOUR + 2):
        submit(engine, now=now - timedelta(minutes=5), client_address=None)
    assert count(engine, IntakeSubmission) == intake_limits.ADDRESS_PER_HOUR + 2


def test_a_refused_or_invalid_submission_is_not_counted(engine, staff):
    now = utcnow()
    with pytest.raises(ValidationError):
        submit(engine, now=now, client_address=HOME, first_name="")
    assert count(engine, IntakeRateEvent) == 0


def test_a_filled_in_hidden_field_is_accepted_but_lands_under_spam(engine, staff):
    sid = submit(engine, client_address=HOME, honeypot="http://cheap-pills.example")

    assert isinstance(sid, int)
    with transaction(engine) as session:
        spam = session.get(IntakeSubmission, sid)
        assert (spam.status, spam.reject_reason) == ("spam", intake.HONEYPOT_REASON)
        assert intake.pending_count(session, actor=staff.manager) == 0
        (row,) = intake.list_submissions(session, actor=staff.manager, status="spam")
    assert (row.name, row.status_label) == ("Quintero, Rosa", "Spam")
    assert count(engine, IntakeRateEvent) == 1  # it counts towards the limits too


def queue_of(engine, n: int) -> list[int]:
    return [submit(engine, first_name=f"Bot{i}") for i in range(n)]


def test_reviewers_mark_many_as_spam_or_reject_them_at_once(engine, staff):
    first, second, third, fourth = queue_of(engine, 4)

    with transaction(engine) as session:
        spam = intake.review_many(
            session, actor=staff.manager, submission_ids=[first, second], action="spam"
        )
    with transaction(engine) as session:
        rejected = intake.review_many(
            session,
            actor=staff.admin,
            submission_ids=[second, third, fourth],
            action="reject",
            reason="Duplicates of one person",
        )

    assert (spam.done, spam.skipped) == (2, 0)
    assert (rejected.done, rejected.skipped) == (2, 1)  # the second was spam already
    assert statuses(engine) == ["spam", "spam", "rejected", "rejected"]
    with transaction(engine) as session:
        audits = session.execute(
            select(AuditEntry.action, AuditEntry.entity_id, AuditEntry.actor_user_id).where(
                AuditEntry.action.in_(("intake.spam", "intake.reject"))
            )
        ).all()
        reasons = [s.reject_reason for s in session.scalars(select(IntakeSubmission))]
    assert sorted(audits) == sorted(
        [
            ("intake.spam", str(first), staff.manager.user_id),
            ("intake.spam", str(second), staff.manager.user_id),
            ("intake.reject", str(third), staff.admin.user_id),
            ("intake.reject", str(fourth), staff.admin.user_id),
        ]
    )
    assert reasons == [intake.SPAM_REASON] * 2 + ["Duplicates of one person"] * 2


def test_spam_can_be_moved_back_to_the_queue(engine, staff):
    honeypotted = submit(engine, honeypot="autofilled by a browser")
    with transaction(engine) as session:
        back = intake.review_many(
            session, actor=staff.manager, submission_ids=[honeypotted], action="not_spam"
        )
    assert back.done == 1
    assert statuses(engine) == ["pending"]
    with transaction(engine) as session:
        (row,) = intake.list_submissions(session, actor=staff.manager, status="pending")
    assert (row.reviewed_at, row.reject_reason) == (None, "")


def test_bulk_reject_needs_a_reason_and_a_choice_and_the_review_right(engine, staff):
    (sid,) = queue_of(engine, 1)
    with pytest.raises(ValidationError) as no_reason, transaction(engine) as session:
        intake.review_many(session, actor=staff.manager, submission_ids=[sid], action="reject")
    with pytest.raises(ValidationError) as nothing, transaction(engine) as session:
        intake.review_many(session, actor=staff.manager, submission_ids=[], action="spam")
    with pytest.raises(PermissionDenied), transaction(engine) as session:
        intake.review_many(session, actor=staff.front_desk, submission_ids=[sid], action="spam")
    assert "reason" in no_reason.value.errors
    assert "Choose at least one" in nothing.value.errors["submissions"]
    assert statuses(engine) == ["pending"]
