"""Every screen in app.PAGES, opened by every role: it renders, or it shows the refusal.

One signed-in session per role (a demo login) walks every registered page through app.py in
AppTest. A page the role may open must show its title, with no traceback and no "Something went
wrong" (app.py turns a page's exception into that message, so ``at.exception`` alone would miss
it). A page the role may not open must say so and show nothing of itself. The Client page is
opened on a client the role may see (a clinician: one of their own), and a clinician opening
someone else's client gets the refusal. A page added to app.PAGES is covered without a change
here.
"""

from __future__ import annotations

import ast

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from streamlit.testing.v1 import AppTest

from lib.db import make_engine
from lib.demo import DEMO_LOGINS
from lib.models import Client, User
from lib.policy import ALL_ROLES, POLICY
from tests import test_pages_login as login_tests
from tests.test_pages_login import APP, NO_ACCESS, sign_in, titles

_fresh_streamlit = login_tests._fresh_streamlit
demo_app = login_tests.demo_app

SOMETHING_WENT_WRONG = "Something went wrong"
CLIENT_PAGE = "pages/client.py"
# The first demo login of each role.
LOGIN_OF_ROLE = {role: next(u for r, u, _, _ in DEMO_LOGINS if r == role) for role in ALL_ROLES}


def _app_constants() -> dict:
    """app.py's top-level constants PUBLIC and PAGES, read from its source: importing app.py
    would run it."""
    tree = ast.parse(APP.read_text())
    found: dict = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            name = getattr(node.targets[0], "id", None)
            if name in ("PUBLIC", "PAGES"):
                code = compile(ast.Expression(node.value), str(APP), "eval")
                found[name] = eval(code, {"__builtins__": {}}, dict(found))
    return found


APP_CONSTANTS = _app_constants()
PUBLIC = APP_CONSTANTS["PUBLIC"]


def app_pages() -> list[tuple[str, str, str | None]]:
    """(file, title, policy action) of every page app.py registers."""
    return [(path, title, action) for path, title, _, action, _ in APP_CONSTANTS["PAGES"]]


PAGES = app_pages()


def may_open(role: str, action: str | None) -> bool:
    return action in (None, PUBLIC) or role in POLICY[action]


def client_numbers(url: str, username: str) -> tuple[int, int | None]:
    """A client this user may open and, for a clinician, one they may not."""
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            user = session.scalars(select(User).where(User.username == username)).one()
            rows = session.execute(
                select(Client.client_number, Client.clinician_id).order_by(Client.id)
            ).all()
    finally:
        engine.dispose()
    if user.clinician_id is None:
        return rows[0].client_number, None
    own = next(n for n, c in rows if c == user.clinician_id)
    other = next(n for n, c in rows if c != user.clinician_id)
    return own, other


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def open_page(at: AppTest, path: str, client: int | None = None) -> AppTest:
    at.query_params.clear()
    if client is not None:
        at.query_params["client"] = str(client)
    at.switch_page(path)
    at.run()
    return at


def problems_on(at: AppTest, path: str, title: str, should_render: bool) -> list[str]:
    """What is wrong with the screen now shown; [] when it is what the role should see."""
    if at.exception:
        return [f"{path}: exception {at.exception[0].message}"]
    found = []
    shown_errors = errors(at)
    if any(SOMETHING_WENT_WRONG in e for e in shown_errors):
        found.append(f"{path}: the page failed ({shown_errors})")
    # Titles, and plain text (the Client page's heading is literal text: "#1001", the name).
    shown_titles = " | ".join([*titles(at), *(t.value for t in at.text)]).lower()
    if should_render:
        if NO_ACCESS in shown_errors:
            found.append(f"{path}: refused a role that may open it")
        if title.lower() not in shown_titles:
            found.append(f"{path}: title {title!r} not shown (titles: {shown_titles!r})")
    else:
        if NO_ACCESS not in shown_errors:
            found.append(f"{path}: no refusal shown (errors: {shown_errors})")
        if title.lower() in shown_titles:
            found.append(f"{path}: refused, yet its title is shown")
    return found


@pytest.mark.parametrize("role", ALL_ROLES)
def test_every_page_renders_for_the_role_or_refuses_it(demo_app, role):
    username = LOGIN_OF_ROLE[role]
    own_client, others_client = client_numbers(demo_app, username)
    at = sign_in(username)

    problems = []
    for path, title, action in PAGES:
        client = own_client if path == CLIENT_PAGE else None
        open_page(at, path, client)
        shows = f"#{own_client}" if path == CLIENT_PAGE else title
        problems += problems_on(at, path, shows, may_open(role, action))
        assert not at.exception, problems  # an exception ends the session's usefulness

    if others_client is not None:  # a clinician and someone else's client
        open_page(at, CLIENT_PAGE, others_client)
        assert not at.exception
        if not any("only the clients assigned to them" in e for e in errors(at)):
            problems.append(f"someone else's client #{others_client}: no refusal {errors(at)}")
        if f"#{others_client}" in " ".join([*titles(at), *(t.value for t in at.text)]):
            problems.append(f"someone else's client #{others_client}: the record is shown")

    assert problems == [], "\n".join(problems)


def test_the_walk_covers_every_registered_page_and_both_outcomes():
    """Each page is opened by some role that may, and each guarded page refused to one that
    may not: the walk above sees both branches of app.py's check."""
    paths = [path for path, _, _ in PAGES]
    assert len(paths) == len(set(paths)) and CLIENT_PAGE in paths
    for _, _, action in PAGES:
        opened_by = [r for r in ALL_ROLES if may_open(r, action)]
        assert opened_by, action
    assert any(not may_open(r, a) for r in ALL_ROLES for _, _, a in PAGES)
