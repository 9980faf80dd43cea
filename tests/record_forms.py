"""Finding a ``ui.record_form.RecordForm``'s widgets in AppTest.

Their keys carry the record's id, the version shown and a generation number
(``rf.<form>.<record id>.v<version>.g<generation>.<field>``), so a test looks them up by form,
record and field instead of spelling out a key that changes with every reload.
"""

from __future__ import annotations

from collections.abc import Iterator

from streamlit.testing.v1 import AppTest


def _nodes(block) -> Iterator:
    yield block
    for child in getattr(block, "children", {}).values():
        yield from _nodes(child)


def keys_on_screen(at: AppTest) -> list[str]:
    return [str(n.key) for n in _nodes(at.main.root) if getattr(n, "key", None)]


def prefix(at: AppTest, form: str, record_id: object) -> str:
    """The key prefix of the form's widgets now on screen (one version, one generation)."""
    start = f"rf.{form}.{record_id}."
    found = {
        k[: k.index(".", k.index(".g", len(start)) + 1) + 1]
        for k in keys_on_screen(at)
        if k.startswith(start)
    }
    assert len(found) == 1, f"expected one {start}… form on screen, found {sorted(found)}"
    return found.pop()


def key(at: AppTest, form: str, record_id: object, field: str) -> str:
    return prefix(at, form, record_id) + field


def submit(at: AppTest, form: str, record_id: object, label: str, *, part: str = "form") -> str:
    """The key of the form's submit button (``part`` names the st.form inside the record form)."""
    return f"FormSubmitter:{prefix(at, form, record_id)}{part}-{label}"


def version_shown(at: AppTest, form: str, record_id: object) -> str:
    p = prefix(at, form, record_id)
    return p.split(".")[-3]  # "v<version>"
