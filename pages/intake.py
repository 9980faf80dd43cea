"""Not a screen: the address /intake on a server's very first request.

Streamlit 1.67 starts each process in its pre-``st.navigation`` mode (there is a ``pages/``
folder), where /intake would find no page and a prospective client would get a "Page not found"
notice. In that mode this file is the page for /intake: it turns the mode off and reruns, so the
same request goes through app.py, whose navigation serves ``pages/intake_public.py`` (registered
with url_path "intake", hence the same page hash). app.py never registers this file, so it is
unreachable otherwise. See also ``ui.context`` (the same fix for signed-in pages).
"""

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

PagesManager.uses_pages_directory = False
st.rerun()
