"""Every edit form, tried by two people at once and by switching records (issue 10, item 5).

The mechanism under test is ``ui.record_form.RecordForm`` (spec: "Conventions that keep writes
trustworthy"). For each form: the user types a change; a colleague saves another field of
the same record; the user's save is refused naming the colleague; Reload shows the
colleague's value; putting the user's change back and saving stores both. Then the user
switches to another record and back: nothing typed for one record appears on the other.
The reminder settings grid saves each change at once against the value shown; its test is
at the end.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from lib import auth, clinicians, forms, insurance, intake, payers, reminders, services
from lib import client_record as cr
from lib.db import transaction
from lib.models import (
    Client,
    Clinician,
    Coverage,
    Form,
    IntakeAnswer,
    IntakeQuestion,
    Payer,
    ReminderSetting,
    Service,
    User,
)
from lib.policy import ADMIN
from tests import record_forms
from tests import test_pages_login as login_tests
from tests.factories import make_user
from tests.test_pages_clients import actor_of, db
from tests.test_pages_login import sign_in

_fresh_streamlit = login_tests._fresh_streamlit
demo_app = login_tests.demo_app

COLLEAGUE = "manager"  # Morgan Manager saves client tabs in between; Casey (admin) settings


def read(url: str, fn):
    with db(url) as engine, transaction(engine) as session:
        return fn(session)


def write(url: str, fn) -> None:
    with db(url) as engine, transaction(engine) as session:
        fn(session, actor_of(url, COLLEAGUE))


# --- the records each form edits --------------------------------------------------------------


def _two_insured_clients(session) -> tuple[int, int]:
    ids = session.scalars(
        select(Client.id)
        .join(Coverage, Coverage.client_id == Client.id)
        .where(Coverage.active.is_(True), Coverage.rank == 1, Client.status == "active")
        .order_by(Client.id)
    ).all()
    return ids[0], ids[1]


def _client_number(url: str, client_id: int) -> int:
    return read(url, lambda s: s.get(Client, client_id).client_number)


def _open_client(at: AppTest, url: str, client_id: int) -> None:
    at.switch_page("pages/client.py")
    at.query_params["client"] = str(_client_number(url, client_id))
    at.run()
    assert not at.exception, at.exception


def _open_choice(page: str, choice_key: str) -> Callable[[AppTest, str, Any], None]:
    def open_(at: AppTest, url: str, record_id: Any) -> None:
        at.switch_page(page)
        at.run()
        at.selectbox(key=choice_key).set_value(record_id).run()
        assert not at.exception, at.exception

    return open_


def _primary(session, client_id: int) -> Coverage:
    return session.scalars(
        select(Coverage).where(
            Coverage.client_id == client_id, Coverage.active.is_(True), Coverage.rank == 1
        )
    ).one()


def _colleague_insurance(session, actor, client_id: int) -> None:
    view = insurance.get_insurance(session, actor=actor, client_id=client_id)
    coverages = [c.fields for c in view.coverages]
    coverages[0] = replace(coverages[0], group_number="GRP-COLLEAGUE")
    insurance.save_insurance(
        session,
        actor=actor,
        client_id=client_id,
        billing_type=view.billing_type,
        coverages=coverages,
        expected_version=view.version,
    )


def _question(session, qtype: str) -> IntakeQuestion:
    return session.scalars(select(IntakeQuestion).where(IntakeQuestion.qtype == qtype)).first()


def _answer(session, client_id: int, question_id: int) -> Any:
    row = session.scalars(
        select(IntakeAnswer).where(
            IntakeAnswer.client_id == client_id, IntakeAnswer.question_id == question_id
        )
    ).first()
    return json.loads(row.value_json) if row else None


def _colleague_answer(session, actor, client_id: int) -> None:
    long_q = _question(session, "long_text")
    existing = session.scalars(
        select(IntakeAnswer).where(
            IntakeAnswer.client_id == client_id, IntakeAnswer.question_id == long_q.id
        )
    ).first()
    intake.save_answers(
        session,
        actor=actor,
        client_id=client_id,
        answers={long_q.id: "Written by the colleague"},
        expected_versions={long_q.id: existing.version if existing else 0},
    )


def _payer_values(p: Payer) -> dict:
    return {"name": p.name, "kind": p.kind, "payer_code": p.payer_code, "phone": p.phone}


@dataclass(frozen=True)
class Case:
    form: str  # the RecordForm's name
    records: Callable[[Any], tuple[Any, Any]]  # session -> (record a, record b)
    open: Callable[[AppTest, str, Any], None]
    field: str  # what the user changes ...
    widget: str  # ... in this kind of widget
    value: Any
    stored: Callable[[Any, Any], Any]  # (session, record) -> the user's field as stored
    colleague: Callable[[Any, Any, Any], None]  # (session, actor, record): saves another field
    colleague_stored: Callable[[Any, Any], Any]  # (session, record) -> that field as stored
    colleague_value: Any
    save: str  # the save button's label
    part: str = "form"  # the st.form inside the record form holding the save button
    name: str = ""  # the test id when one form has several cases


def _client_cases() -> list[Case]:
    clients = _two_insured_clients
    return [
        Case(
            "client_personal",
            clients,
            lambda at, url, cid: _open_client(at, url, cid),
            "gender_identity",
            "text_input",
            "Man",
            lambda s, cid: s.get(Client, cid).gender_identity,
            lambda s, a, cid: cr.save_section(
                s,
                actor=a,
                client_id=cid,
                section="personal",
                changes={"referral_source": "Dr. Smith (PCP)"},
                expected_version=s.get(Client, cid).personal_version,
            ),
            lambda s, cid: s.get(Client, cid).referral_source,
            "Dr. Smith (PCP)",
            "Save personal details",
        ),
        Case(
            "client_contact",
            clients,
            lambda at, url, cid: _open_client(at, url, cid),
            "address_line2",
            "text_input",
            "Apt 4B",
            lambda s, cid: s.get(Client, cid).address_line2,
            lambda s, a, cid: cr.save_section(
                s,
                actor=a,
                client_id=cid,
                section="contact",
                changes={"city": "Cambridge"},
                expected_version=s.get(Client, cid).contact_version,
            ),
            lambda s, cid: s.get(Client, cid).city,
            "Cambridge",
            "Save contact details",
        ),
        Case(
            "client_insurance",
            clients,
            lambda at, url, cid: _open_client(at, url, cid),
            "1_plan_name",
            "text_input",
            "Gold PPO",
            lambda s, cid: _primary(s, cid).plan_name,
            _colleague_insurance,
            lambda s, cid: _primary(s, cid).group_number,
            "GRP-COLLEAGUE",
            "Save insurance",
        ),
        Case(
            "client_intake",
            clients,
            lambda at, url, cid: _open_client(at, url, cid),
            "q{short_text}",
            "text_input",
            "Bupropion 150 mg (typed in a test)",
            lambda s, cid: _answer(s, cid, _question(s, "short_text").id),
            _colleague_answer,
            lambda s, cid: _answer(s, cid, _question(s, "long_text").id),
            "Written by the colleague",
            "Save other information",
        ),
    ]


def _settings_cases() -> list[Case]:
    def two(model):
        return lambda s: tuple(s.scalars(select(model.id).order_by(model.id).limit(2)).all())

    def staff(s):
        ids = s.scalars(
            select(User.id).where(User.username.in_(["biller", "frontdesk"])).order_by(User.id)
        ).all()
        return ids[0], ids[1]

    def colleague_payer(s, a, pid):
        p = s.get(Payer, pid)
        payers.save_payer(
            s,
            actor=actor_of_admin(s),
            values={**_payer_values(p), "address": "PO Box 9, Colleague City"},
            active=p.active,
            payer_id=pid,
            expected_version=p.version,
        )

    def colleague_service(s, a, sid):
        v = s.get(Service, sid)
        services.save_service(
            s,
            actor=actor_of_admin(s),
            code=v.code,
            description=v.description,
            fee_cents=12345,
            default_minutes=v.default_minutes,
            active=v.active,
            service_id=sid,
            expected_version=v.version,
        )

    def colleague_form(s, a, fid):
        f = s.get(Form, fid)
        forms.save_form(
            s,
            actor=actor_of_admin(s),
            name=f.name,
            email_subject=f.email_subject,
            email_body="Hello {first_name},\n\nWritten by the colleague.",
            active=f.active,
            form_id=fid,
            expected_version=f.version,
        )

    def colleague_question(s, a, qid):
        q = s.get(IntakeQuestion, qid)
        intake.save_question(
            s,
            actor=actor_of_admin(s),
            label=q.label + " (reworded)",
            help_text=q.help_text,
            qtype=q.qtype,
            options=json.loads(q.options_json),
            required=q.required,
            question_id=qid,
            expected_version=q.version,
        )

    def colleague_staff(s, a, uid):
        user = s.get(User, uid)
        auth.set_active(
            s,
            actor=actor_of_admin(s),
            username=user.username,
            active=False,
            expected_version=user.version,
        )

    def colleague_clinician(s, a, cid):
        c = s.get(Clinician, cid)
        clinicians.save_clinician(
            s,
            actor=actor_of_admin(s),
            changes={"email": "colleague.set@example.com"},
            clinician_id=cid,
            expected_version=c.version,
        )

    return [
        Case(
            "clinician",
            two(Clinician),
            _open_choice("pages/clinicians.py", "clinician_choice"),
            "credentials",
            "text_input",
            "PsyD",
            lambda s, cid: s.get(Clinician, cid).credentials,
            colleague_clinician,
            lambda s, cid: s.get(Clinician, cid).email,
            "colleague.set@example.com",
            "Save clinician",
        ),
        Case(
            "staff_account",
            staff,
            lambda at, url, uid: _open_staff(at, url, uid),
            "email",
            "text_input",
            "new.address@example.com",
            lambda s, uid: s.get(User, uid).email,
            colleague_staff,
            lambda s, uid: s.get(User, uid).active,
            False,
            "Save name and email",
            part="details_form",
            name="staff_account_email",
        ),
        Case(
            "payer",
            two(Payer),
            _open_choice("pages/payers.py", "payer_choice"),
            "phone",
            "text_input",
            "(617) 555-0190",
            lambda s, pid: s.get(Payer, pid).phone,
            colleague_payer,
            lambda s, pid: s.get(Payer, pid).address,
            "PO Box 9, Colleague City",
            "Save payer",
        ),
        Case(
            "service",
            two(Service),
            _open_choice("pages/services.py", "service_choice"),
            "description",
            "text_input",
            "Psychotherapy, reworded",
            lambda s, sid: s.get(Service, sid).description,
            colleague_service,
            lambda s, sid: s.get(Service, sid).fee_cents,
            12345,
            "Save service",
        ),
        Case(
            "library_form",
            two(Form),
            _open_choice("pages/forms.py", "forms_choice"),
            "email_subject",
            "text_input",
            "Forms from Riverbend Counseling",
            lambda s, fid: s.get(Form, fid).email_subject,
            colleague_form,
            lambda s, fid: s.get(Form, fid).email_body,
            "Hello {first_name},\n\nWritten by the colleague.",
            "Save form",
        ),
        Case(
            "intake_question",
            two(IntakeQuestion),
            _open_choice("pages/intake_questions.py", "iq_choice"),
            "help_text",
            "text_input",
            "Take your time.",
            lambda s, qid: s.get(IntakeQuestion, qid).help_text,
            colleague_question,
            lambda s, qid: s.get(IntakeQuestion, qid).label.endswith(" (reworded)"),
            True,
            "Save question",
        ),
        Case(
            "staff_account",
            staff,
            lambda at, url, uid: _open_staff(at, url, uid),
            "role",
            "selectbox",
            "manager",
            lambda s, uid: s.get(User, uid).role,
            colleague_staff,
            lambda s, uid: s.get(User, uid).active,
            False,
            "Change role",
            part="role_form",
        ),
    ]


def actor_of_admin(session):
    """A colleague who may change settings: a second administrator."""
    user = session.scalars(select(User).where(User.username == "casey")).first()
    if user is None:
        return make_user(session, ADMIN, "casey")
    return auth.actor_for(user)


def _open_staff(at: AppTest, url: str, user_id: int) -> None:
    username = read(url, lambda s: s.get(User, user_id).username)
    at.switch_page("pages/users.py")
    at.run()
    at.selectbox(key="users_target").set_value(username).run()
    assert not at.exception, at.exception


CASES = _client_cases() + _settings_cases()


def _set(at: AppTest, case: Case, record: Any, field: str, value: Any) -> None:
    widget = getattr(at, case.widget)(key=record_forms.key(at, case.form, record, field))
    if case.widget == "text_input":
        widget.input(value)
    else:
        widget.set_value(value)


def _shown(at: AppTest, case: Case, record: Any, field: str) -> Any:
    return getattr(at, case.widget)(key=record_forms.key(at, case.form, record, field)).value


@pytest.mark.parametrize("case", CASES, ids=[c.name or c.form for c in CASES])
def test_a_colleagues_save_in_between_survives_reload_and_save(demo_app, case: Case):
    url = demo_app
    a, b = read(url, case.records)
    field = case.field
    if field == "q{short_text}":
        field = f"q{read(url, lambda s: _question(s, 'short_text').id)}"
    before = read(url, lambda s: case.stored(s, a))
    at = sign_in("admin")
    case.open(at, url, a)

    _set(at, case, a, field, case.value)  # typed, not saved yet
    write(url, lambda s, actor: case.colleague(s, actor, a))
    colleague = read(url, lambda s: case.colleague_stored(s, a))
    old_prefix = record_forms.prefix(at, case.form, a)
    at.button(key=record_forms.submit(at, case.form, a, case.save, part=case.part)).click().run()

    assert not at.exception, at.exception
    assert any("Changed by" in e.value for e in at.error), (
        [e.value for e in at.error],
        [i.value for i in at.info],
        [x.value for x in at.success],
    )
    assert read(url, lambda s: case.stored(s, a)) == before  # nothing of ours was written
    assert read(url, lambda s: case.colleague_stored(s, a)) == colleague
    assert any("Not saved:" in t.value for t in at.text)

    at.button(key=old_prefix + "reload").click().run()
    assert not at.exception, at.exception
    assert record_forms.prefix(at, case.form, a) != old_prefix  # new keys after a reload
    assert _shown(at, case, a, field) != case.value  # the stored value, not the typing

    at.button(key=record_forms.prefix(at, case.form, a) + "reapply").click().run()
    assert _shown(at, case, a, field) == case.value  # put back, on top of the new version
    at.button(key=record_forms.submit(at, case.form, a, case.save, part=case.part)).click().run()
    assert not at.exception, at.exception
    assert not [e.value for e in at.error if "Changed by" in e.value]
    assert read(url, lambda s: case.stored(s, a)) == case.value
    assert read(url, lambda s: case.colleague_stored(s, a)) == colleague  # theirs survived
    assert colleague == case.colleague_value

    # Switching records carries nothing over: b shows its own value, then a its stored one.
    case.open(at, url, b)
    b_value = read(url, lambda s: case.stored(s, b))
    _set(at, case, b, field, case.value if b_value != case.value else "x")
    case.open(at, url, a)
    case.open(at, url, b)
    shown_b = _shown(at, case, b, field)
    assert shown_b == (b_value if case.widget != "text_input" else (b_value or ""))


# --- the reminder settings grid: each change saves at once, against the value shown ---------


def _grid_key(at: AppTest, scope: str, scope_id: int, setting: str) -> str:
    prefix = f"rem_{scope}_{scope_id}_g"
    keys = [k for k in record_forms.keys_on_screen(at) if k.startswith(prefix)]
    (key,) = [k for k in keys if k.endswith("_" + setting)]
    return key


def _override(url: str, scope: str, scope_id: int, key: str):
    row = read(
        url,
        lambda s: s.scalars(
            select(ReminderSetting).where(
                ReminderSetting.scope == scope, ReminderSetting.scope_id == scope_id
            )
        ).first(),
    )
    return getattr(row, key) if row is not None else None


@pytest.mark.parametrize("scope", ["client", "practice"])
def test_reminder_settings_keep_a_colleagues_change_and_do_not_carry_over(demo_app, scope):
    url = demo_app
    a, b = read(url, _two_insured_clients)
    at = sign_in("admin")
    if scope == "client":
        _open_client(at, url, a)
        scope_id = a
    else:
        at.switch_page("pages/reminder_settings.py").run()
        scope_id = 0
    # A colleague switches text reminders after the grid was shown ...
    sms = _override(url, scope, scope_id, "channel_sms")
    write(
        url,
        lambda s, actor: reminders.save_overrides(
            s,
            actor=actor_of_admin(s),
            scope=scope,
            scope_id=scope_id,
            changes={"channel_sms": not sms},
            expected={"channel_sms": sms},
        ),
    )
    # ... and the user changes the lead time: saved, and the colleague's change survives.
    at.number_input(key=_grid_key(at, scope, scope_id, "lead_hours")).set_value(48).run()
    assert not at.exception, at.exception
    assert _override(url, scope, scope_id, "lead_hours") == 48
    assert _override(url, scope, scope_id, "channel_sms") is (not sms)
    # The same setting changed by both: the user's stale change is refused, theirs shown.
    write(
        url,
        lambda s, actor: reminders.save_overrides(
            s,
            actor=actor_of_admin(s),
            scope=scope,
            scope_id=scope_id,
            changes={"lead_hours": 72},
            expected={"lead_hours": 48},
        ),
    )
    at.number_input(key=_grid_key(at, scope, scope_id, "lead_hours")).set_value(12).run()
    assert _override(url, scope, scope_id, "lead_hours") == 72
    assert any("nothing was saved" in e.value for e in at.error)
    assert at.number_input(key=_grid_key(at, scope, scope_id, "lead_hours")).value == 72
    if scope == "client":  # another client's grid starts from that client's own values
        _open_client(at, url, b)
        assert at.number_input(key=_grid_key(at, "client", b, "lead_hours")).value == (
            _override(url, "client", b, "lead_hours")
        )
