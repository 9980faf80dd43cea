"""Public page (no sign-in): a client accepts a portal invitation from the emailed link.

It shows nothing from the database: a good token gets a thank-you, every other token the same
single message. Accepting takes a click, so a mail scanner that opens the link accepts nothing.
"""

import streamlit as st

from lib import portal
from lib.db import transaction
from ui import context

ACCEPTED = "cd_portal_accepted"

st.title("Client portal invitation")
token = st.query_params.get("token", "")

if st.session_state.get(ACCEPTED):
    st.success(
        "Thank you — your invitation is accepted. The practice will let you know when your "
        "portal account is ready. You can close this page."
    )
    st.stop()
if not token:
    st.info("Open the link in your invitation email to accept it.")
    st.stop()

st.write("Your practice invited you to its client portal.")
if st.button("Accept invitation", type="primary", key="portal_accept"):
    try:
        with transaction(context.engine()) as session:
            portal.accept_invitation(session, token=token)
    except portal.InvalidInvitation as exc:
        st.error(str(exc))
    else:
        st.session_state[ACCEPTED] = True
        st.query_params.clear()  # the token leaves the address bar and the history
        st.rerun()
