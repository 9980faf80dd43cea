"""Collections: who to contact today about what they owe, and what they said last time.

Pick rows in the list: with one row picked, log a contact for that client (two clicks); with
any rows picked, make their statements (one PDF) or email them an account reminder (only
clients who agreed to email; no amounts in the email; a double click sends once).
"""

import uuid

import streamlit as st

from lib import collection_reminders, collections_worklist, mail
from lib.db import read_session, write
from lib.money import MoneyError, format_cents, parse_amount
from lib.policy import PermissionDenied
from ui import collections as ui
from ui import context
from ui.export import statements_button

TABLE = "coll_table"
SEEN = "coll_seen"  # client ids in the order the table last showed them
BATCH = "coll_batch"  # (selected ids, idempotency key) of the reminder batch
RESULT = "coll_result"
CLEAR = "coll_clear_selection"

actor = context.actor()
engine = context.engine()
settings = context.settings()
st.title("Collections")
st.caption(
    "Clients who owe more than the threshold on visits older than the number of days, whose "
    "follow-up date has come, or whose payment plan is behind. Most pressing first: dollars "
    "owed × days since the oldest unpaid visit."
)

c1, c2, _ = st.columns([1, 1, 2])
threshold_text = c1.text_input(
    "Owing more than",
    value=format_cents(collections_worklist.DEFAULT_THRESHOLD_CENTS).lstrip("$"),
    key="coll_threshold",
)
threshold_slot = c1.empty()
days = c2.number_input(
    "Oldest unpaid visit older than (days)",
    min_value=0,
    max_value=3650,
    value=collections_worklist.DEFAULT_DAYS,
    step=15,
    key="coll_days",
)
try:
    threshold = parse_amount(threshold_text, allow_zero=True)
except MoneyError as exc:
    threshold_slot.error(str(exc))
    st.stop()

with read_session(engine) as session:
    found = collections_worklist.worklist(
        session, actor=actor, threshold_cents=threshold, days=int(days)
    )

if st.session_state.pop(CLEAR, False):
    st.session_state.pop(TABLE, None)
seen = st.session_state.get(SEEN) or []
state = st.session_state.get(TABLE)
positions = list(state["selection"]["rows"]) if state else []
chosen_ids = [seen[i] for i in positions if i < len(seen)]
shown_ids = [r.client_id for r in found.rows]
chosen = [r for r in found.rows if r.client_id in set(chosen_ids)]
if len(chosen) != len(chosen_ids) or [shown_ids.index(r.client_id) for r in chosen] != sorted(
    positions
):
    # The list changed under the selection: move the checkboxes to the same clients.
    st.session_state[TABLE] = {
        "selection": {"rows": sorted(shown_ids.index(r.client_id) for r in chosen), "columns": []}
    }
st.session_state[SEEN] = shown_ids

m1, m2 = st.columns(2)
m1.metric("Clients on the list", f"{found.total_count:,}")
m2.metric("They owe", format_cents(found.total_owed_cents))
message = st.session_state.pop(RESULT, None)
if message:
    st.success(message)

st.dataframe(
    ui.worklist_frame(found, settings.practice_time_zone),
    hide_index=True,
    width="stretch",
    key=TABLE,
    column_config=ui.WORKLIST_CONFIG,
    on_select="rerun",
    selection_mode="multi-row",
)
if found.total_count > len(found.rows):
    st.caption(
        f"Showing the {len(found.rows):,} most pressing of {found.total_count:,}. Raise the "
        "threshold or the days to narrow the list."
    )
else:
    st.caption("Tick rows to log a contact, make statements or send a reminder.")

if len(chosen) == 1:
    row = chosen[0]
    st.subheader(f"Log a contact · client #{row.client_number}")
    logged = ui.contact_form(row.client_id, where="worklist")
    if logged:
        # The row is unticked, so the form (and its button) is gone: a double click's second
        # click finds nothing to press.
        ui.forget_form("worklist", row.client_id)
        st.session_state[RESULT] = f"Client #{row.client_number}: {logged}"
        st.session_state[CLEAR] = True
        st.rerun()
    if st.button("Open the client", key="coll_open"):
        st.switch_page("pages/client.py", query_params={"client": str(row.client_number)})

if chosen:
    st.subheader(f"{len(chosen):,} selected")
    ids = [r.client_id for r in chosen]
    b1, b2 = st.columns(2)
    statements_button(
        f"Statements for the {len(chosen):,} selected (one PDF)",
        client_ids=ids,
        key="coll_statements",
        container=b1,
    )
    can_email = sum(1 for r in chosen if r.email_ok)
    batch = st.session_state.get(BATCH)
    if not batch or batch[0] != tuple(ids):
        batch = (tuple(ids), uuid.uuid4().hex)
        st.session_state[BATCH] = batch
    if b2.button(
        f"Email a reminder to the {can_email:,} who agreed to email",
        key="coll_remind",
        icon=":material/forward_to_inbox:",
        disabled=can_email == 0,
        help="The email asks the client to contact the office; it carries no amount.",
    ):
        try:
            result = write(
                engine,
                lambda session: collection_reminders.send_reminders(
                    session,
                    actor=actor,
                    client_ids=ids,
                    idempotency_key=batch[1],
                    mail_settings=mail.mail_settings(settings.data_dir),
                ),
            )
        except (PermissionDenied, ValueError) as exc:
            st.error(str(exc))
        else:
            if result.duplicate:
                st.session_state[RESULT] = (
                    "These reminders were already sent; nothing was sent again. "
                    "Change the selection to send another batch."
                )
            else:
                not_sent = len(result.skipped)
                st.session_state[RESULT] = (
                    f"{result.queued:,} reminder email(s) queued; they go out within a minute "
                    f"(see each client's Documents). {not_sent:,} not emailed (no address or "
                    "no email consent)."
                    if not_sent
                    else f"{result.queued:,} reminder email(s) queued; they go out within a "
                    "minute (see each client's Documents)."
                )
            st.rerun()
