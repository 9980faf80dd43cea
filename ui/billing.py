"""Billing on the client record: the ledger with running balance, and the posting dialogs.

Each dialog takes an idempotency key when it opens, so a double-click posts once.
"""

from __future__ import annotations

import uuid

import streamlit as st

from lib import insurance, mail, postings, receipts, statements
from lib.db import read_session, transaction, write
from lib.money import MoneyError, format_cents, parse_amount
from lib.policy import PermissionDenied, allowed
from lib.timeutil import practice_today
from lib.validation import ValidationError
from ui import context
from ui.client_views import billing_tab
from ui.export import statements_button
from ui.flash import flash

PAYMENT_DIALOG = "cd_payment_dialog_key"
PAYMENT_OPEN = "cd_payment_dialog_open"  # id of the client whose payment dialog is open


def _key(name: str) -> str:
    """The idempotency key of the dialog currently open (new one per opening)."""
    if name not in st.session_state:
        st.session_state[name] = uuid.uuid4().hex
    return st.session_state[name]


def _show_errors(errors: dict[str, str], slots: dict) -> None:
    for field, message in errors.items():
        slots.get(field, st).error(message)


def open_payment_dialog(client_id: int) -> None:
    """Button callback: open the payment dialog (with a fresh idempotency key).

    The dialog stays open while this flag is set, so every rerun (and AppTest, which cannot
    rerun a dialog on its own) draws it again; dismissing or posting clears the flag.
    """
    st.session_state[PAYMENT_OPEN] = client_id
    st.session_state.pop(PAYMENT_DIALOG, None)
    # Nothing typed or chosen for another client (or an earlier opening) carries over.
    for k in [k for k in st.session_state if str(k).startswith("pay_")]:
        del st.session_state[k]


def _close_payment_dialog() -> None:
    st.session_state.pop(PAYMENT_OPEN, None)


def payment_dialog_if_open(client_id: int) -> None:
    if st.session_state.get(PAYMENT_OPEN) == client_id:
        record_payment_dialog(client_id)


@st.dialog("Record payment", on_dismiss=_close_payment_dialog)
def record_payment_dialog(client_id: int) -> None:
    key = _key(PAYMENT_DIALOG)
    amount_text = st.text_input("Amount", placeholder="125.00", key="pay_amount")
    slots = {"amount": st.empty()}
    c1, c2 = st.columns(2)
    paid_by = c1.radio(
        "Paid by",
        list(postings.PAYER_LABELS),
        format_func=postings.PAYER_LABELS.get,
        horizontal=True,
        key="pay_by",
    )
    method = c2.selectbox(
        "Method",
        list(postings.METHOD_LABELS),
        format_func=postings.METHOD_LABELS.get,
        key="pay_method",
    )
    slots["method"] = c2.empty()
    payer, confirmed = None, False
    if paid_by == "insurance":
        payer, confirmed = _insurance_payer(client_id, slots)
    c1, c2 = st.columns(2)
    reference = c1.text_input(
        "Reference",
        key="pay_reference",
        help="Check number, or the card's last 4 digits. Never a full card number.",
    )
    slots["reference"] = c1.empty()
    auth_code = c2.text_input("Authorization code", key="pay_auth")
    slots["authorization_code"] = c2.empty()
    received = st.date_input(
        "Received on",
        value=practice_today(),
        max_value=practice_today(),
        format="MM/DD/YYYY",
        key="pay_received",
    )
    slots["received_on"] = st.empty()
    memo = st.text_input("Note (kept in the ledger, not emailed)", key="pay_memo")
    send_receipt = paid_by == "client" and st.checkbox(
        "Email a receipt to the client",
        key="pay_receipt",
        help="Amount, date, method and reference only — no client or service details.",
    )
    if st.button("Record payment", type="primary", key="pay_submit"):
        try:
            cents = parse_amount(amount_text)
        except MoneyError as exc:
            slots["amount"].error(str(exc))
            return
        actor = context.actor()
        try:
            # A colleague's save at the same moment makes this wait or run again, never fail.
            result = write(
                context.engine(),
                lambda session: postings.record_payment(
                    session,
                    actor=actor,
                    client_id=client_id,
                    amount_cents=cents,
                    method=method,
                    idempotency_key=key,
                    paid_by=paid_by,
                    reference=reference,
                    authorization_code=auth_code,
                    memo=memo,
                    received_on=received,
                    payer_id=payer.payer_id if payer else None,
                    payer_name=payer.payer_name if payer else "",
                    confirmed_other_payer=confirmed,
                ),
            )
        except ValidationError as exc:
            _show_errors(exc.errors, slots)
            return
        except (postings.PostingError, PermissionDenied) as exc:
            st.error(str(exc))
            return
        message = (
            f"Payment of {format_cents(result.amount_cents)} recorded. "
            f"Balance now {format_cents(result.total_cents)}."
        )
        if send_receipt:
            message += " " + _email_receipt(result.entry_id)
        for k in [k for k in st.session_state if str(k).startswith("pay_")]:
            del st.session_state[k]
        del st.session_state[PAYMENT_DIALOG]
        _close_payment_dialog()
        flash("success", message)
        st.rerun()


def _insurance_payer(client_id: int, slots: dict) -> tuple[insurance.PaymentPayer | None, bool]:
    """The paying insurer: the client's primary coverage unless the user picks another; a
    payer not on the client's coverages needs an explicit tick."""
    with read_session(context.engine()) as session:
        choices = insurance.payment_payers(session, client_id=client_id, actor=context.actor())
    by_value = {_payer_value(c): c for c in choices}
    values = list(by_value)
    chosen = st.selectbox(
        "Payer",
        values,
        index=0 if choices and choices[0].on_file else None,
        format_func=lambda v: by_value[v].label,
        placeholder="Choose the insurance payer who paid",
        key="pay_payer",
    )
    slots["payer_id"] = st.empty()
    payer = by_value.get(chosen)
    confirmed = False
    if payer is not None and not payer.on_file:
        confirmed = st.checkbox(
            "This payer is not on the client's coverages. Record the payment from it anyway.",
            key="pay_other_payer",
        )
    return payer, confirmed


def _payer_value(payer: insurance.PaymentPayer) -> str:
    """A stable option value (not a position), so a list that changes cannot shift a choice."""
    if payer.payer_id is not None:
        return f"id:{payer.payer_id}"
    return f"name:{payer.ref.name_key}"


def _email_receipt(entry_id: int) -> str:
    """Queue the receipt after the payment committed; a mail problem never undoes a payment."""
    settings = mail.mail_settings(context.settings().data_dir)
    try:
        with transaction(context.engine()) as session:
            receipts.email_receipt(
                session, actor=context.actor(), entry_id=entry_id, settings=settings
            )
    except (receipts.ReceiptError, mail.MailError) as exc:
        return f"No receipt was emailed: {exc}"
    return "The receipt is queued and goes out within a minute (see Documents)."


def _email_statement(client_id: int) -> None:
    settings = context.settings()
    try:
        with transaction(context.engine()) as session:
            queued = statements.email_statement(
                session,
                actor=context.actor(),
                client_id=client_id,
                data_dir=settings.data_dir,
                mail_settings=mail.mail_settings(settings.data_dir),
            )
    except statements.StatementNotEmailed as exc:
        flash("error", f"The statement was not emailed: {exc}")
        return
    flash(
        "success",
        f"The statement is queued for {queued.recipient} and goes out within a minute "
        "(see Documents).",
    )


def corrections(client_id: int) -> None:
    """Adjustments, refunds and reversals (billing roles). Corrections never edit the ledger:
    each is a new entry."""
    with st.expander("Adjustment, refund or reversal"):
        kind = st.radio(
            "What",
            ["adjustment", "refund", "reversal"],
            horizontal=True,
            format_func=str.capitalize,
            key=f"corr_kind_{client_id}",
        )
        key_name = f"cd_corr_key_{client_id}_{kind}"
        key = _key(key_name)
        slots: dict = {}
        post = None
        if kind in ("adjustment", "refund"):
            text = st.text_input("Amount", key=f"corr_amt_{client_id}")
            slots["amount"] = st.empty()
        if kind == "adjustment":
            side = st.radio(
                "Lowers what is owed by",
                ["insurance", "client"],
                format_func=postings.PAYER_LABELS.get,
                horizontal=True,
                key=f"corr_side_{client_id}",
            )
            memo = st.text_input("Reason", key=f"corr_memo_{client_id}")
            slots["memo"] = st.empty()
            if st.button("Post adjustment", key=f"corr_go_{client_id}"):

                def post(session):
                    return postings.post_adjustment(
                        session,
                        actor=context.actor(),
                        client_id=client_id,
                        amount_cents=parse_amount(text),
                        responsibility=side,
                        memo=memo,
                        idempotency_key=key,
                    )
        elif kind == "refund":
            method = st.selectbox(
                "Refunded by",
                list(postings.METHOD_LABELS),
                format_func=postings.METHOD_LABELS.get,
                key=f"corr_method_{client_id}",
            )
            reference = st.text_input("Reference", key=f"corr_ref_{client_id}")
            slots["reference"] = st.empty()
            if st.button("Post refund", key=f"corr_go_{client_id}"):

                def post(session):
                    return postings.post_refund(
                        session,
                        actor=context.actor(),
                        client_id=client_id,
                        amount_cents=parse_amount(text),
                        method=method,
                        reference=reference,
                        idempotency_key=key,
                    )
        else:
            entry = st.number_input(
                "Ledger entry # to reverse", min_value=1, step=1, key=f"corr_entry_{client_id}"
            )
            reason = st.text_input("Reason", key=f"corr_reason_{client_id}")
            slots["reason"] = st.empty()
            if st.button("Post reversal", key=f"corr_go_{client_id}"):

                def post(session):
                    return postings.reverse_entry(
                        session,
                        actor=context.actor(),
                        entry_id=int(entry),
                        reason=reason,
                        idempotency_key=key,
                        client_id=client_id,
                    )

        if post is None:
            return
        try:
            write(context.engine(), post)
        except MoneyError as exc:
            slots["amount"].error(str(exc))
        except ValidationError as exc:
            _show_errors(exc.errors, slots)
        except (postings.PostingError, PermissionDenied) as exc:
            st.error(str(exc))
        else:
            _done(key_name, f"{kind.capitalize()} posted.")


def _done(key_name: str, message: str) -> None:
    st.session_state.pop(key_name, None)
    flash("success", message)
    st.rerun()


def billing_section(client_id: int) -> None:
    """The Billing tab: actions for the role, and the ledger (messages: ui/flash.py)."""
    actor = context.actor()
    c1, c2, c3, _ = st.columns([1, 1, 1, 1])
    if allowed(actor, "payment.record"):
        c1.button(
            "Record payment",
            key="billing_pay",
            icon=":material/payments:",
            on_click=open_payment_dialog,
            args=(client_id,),
        )
    if allowed(actor, "statement.create"):
        # Built (stored, logged, audited) only when clicked, for the client shown at the click.
        statements_button(
            "Statement (PDF)", client_ids=[client_id], key="billing_stmt", container=c2
        )
        with read_session(context.engine()) as session:
            recipient = statements.statement_recipient(session, actor=actor, client_id=client_id)
        c3.button(
            "Email the statement",
            key="billing_stmt_email",
            icon=":material/forward_to_inbox:",
            disabled=bool(recipient.problem),
            help=recipient.problem or f"Sends the statement as a PDF to {recipient.address}.",
            on_click=_email_statement,
            args=(client_id,),
        )
    if allowed(actor, "ledger.adjust"):
        corrections(client_id)
    billing_tab(client_id)
