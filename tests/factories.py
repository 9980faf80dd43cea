"""Small builders for test data. Passwords are hashed once per run (bcrypt cost 12 is slow)."""

from __future__ import annotations

import itertools
from datetime import date
from functools import cache

from sqlalchemy import inspect, select, text
from sqlalchemy.orm import Session

from lib import auth, client_totals
from lib.clients import search_columns
from lib.models import Client, Clinician
from lib.policy import CLINICIAN, Actor
from lib.timeutil import utcnow

PASSWORD = "correct-horse-battery"
_numbers = itertools.count(50_000)


@cache
def password_hash(password: str = PASSWORD) -> str:
    return auth.hash_password(password)


def make_clinician(session: Session, first: str = "Test", last: str = "Clinician") -> int:
    clinician = Clinician(
        first_name=first, last_name=last, credentials="LCSW", email="", active=True
    )
    session.add(clinician)
    session.flush()
    return clinician.id


def make_user(
    session: Session,
    role: str,
    username: str | None = None,
    *,
    clinician_id: int | None = None,
    password: str = PASSWORD,
) -> Actor:
    if role == CLINICIAN and clinician_id is None:
        clinician_id = make_clinician(session)
    return auth.create_user(
        session,
        actor=None,
        username=username or f"{role.replace('_', '')}{next(_numbers)}",
        display_name=f"Test {role}",
        role=role,
        password=password,
        clinician_id=clinician_id,
        password_hash=password_hash(password),
    )


def make_client(
    session: Session,
    *,
    first_name: str = "Jane",
    last_name: str = "Doe",
    preferred_name: str = "",
    dob: date | None = date(1985, 3, 7),
    email: str = "",
    phone_mobile: str = "",
    status: str = "active",
    clinician_id: int | None = None,
) -> int:
    """Insert a client row directly (for tests of code that reads clients), counted in the
    list totals the way lib.clients.create_client counts it."""
    now = utcnow()
    client = Client(
        client_number=next(_numbers),
        first_name=first_name,
        last_name=last_name,
        preferred_name=preferred_name,
        dob=dob,
        email=email,
        phone_mobile=phone_mobile,
        status=status,
        clinician_id=clinician_id,
        created_at=now,
        updated_at=now,
        version=1,
        **search_columns(
            first_name=first_name,
            last_name=last_name,
            preferred_name=preferred_name,
            email=email,
            phones=(phone_mobile,),
        ),
    )
    session.add(client)
    session.flush()
    client_totals.adjust(session, status=status, clinician_id=clinician_id, count=1)
    return client.id


def insert_client_row(session: Session, **values) -> int:
    """A client row written with plain SQL, filling only the columns the table has at the
    database's current revision: for tests that build data under an older migration, where
    the ORM model already knows columns that a later migration adds."""
    table = Client.__table__
    present = {c["name"] for c in inspect(session.connection()).get_columns("clients")}
    now = utcnow()
    row: dict = {}
    for column in table.columns:
        if column.name not in present or column.name == "id":
            continue
        if column.name in values:
            row[column.name] = values[column.name]
        elif column.default is not None and column.default.is_scalar:
            row[column.name] = column.default.arg
        elif column.nullable:
            row[column.name] = None
        elif column.name in ("created_at", "updated_at"):
            row[column.name] = now
        else:
            row[column.name] = {bool: False, int: 0}.get(column.type.python_type, "")
    row.setdefault("client_number", next(_numbers))
    row.setdefault("first_name", "Jane")
    row.setdefault("last_name", "Doe")
    row["status"] = values.get("status", "active")
    row["client_type"] = values.get("client_type", row.get("client_type") or "adult")
    row["billing_type"] = values.get("billing_type", row.get("billing_type") or "self_pay")
    row["preferred_phone"] = values.get("preferred_phone", row.get("preferred_phone") or "mobile")
    row = {k: v for k, v in row.items() if k in present}
    # Plain SQL: a Core insert would add the model's defaults for columns the table lacks.
    columns = ", ".join(row)
    session.execute(
        text(f"INSERT INTO clients ({columns}) VALUES ({', '.join(':' + k for k in row)})"), row
    )
    return session.scalar(select(Client.id).where(Client.client_number == row["client_number"]))
