"""Settings as data: the table in lib/config.py is the one list of settings (issue 13).

The README's Configuration table must be that table, row for row, so an operator reads the same
names, defaults and meanings the code uses; and every ``CLIENTDESK_*`` name the code or the
Makefile mentions must be declared there.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lib import config, forms, mail, portal
from lib.config import SETTINGS, ConfigurationError, load_settings, setting

ROOT = Path(__file__).resolve().parent.parent


def readme_rows() -> list[tuple[str, str, str]]:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Configuration") :]
    section = section[: section.index("\n## ", 1)]
    rows = []
    for line in section.splitlines():
        if line.startswith("| `"):
            name, default, meaning = (cell.strip() for cell in line.strip().strip("|").split(" | "))
            rows.append((name.strip("`"), default, meaning))
    return rows


def test_the_readme_lists_exactly_the_settings_of_the_table_with_their_defaults():
    rows = readme_rows()
    assert [name for name, _, _ in rows] == [s.name for s in SETTINGS]
    assert {name: default for name, default, _ in rows} == {
        s.name: s.default_text for s in SETTINGS
    }
    assert rows == [(s.name, s.default_text, s.meaning) for s in SETTINGS], (
        "regenerate the README's table with `python -m lib.config`"
    )


def test_every_setting_the_code_or_makefile_names_is_declared():
    files = [
        *ROOT.glob("lib/**/*.py"),
        *ROOT.glob("ui/*.py"),
        *ROOT.glob("pages/*.py"),
        *ROOT.glob("bench/*.py"),
        ROOT / "app.py",
        ROOT / "serve.py",
        ROOT / "Makefile",
    ]
    named = {
        m for f in files for m in re.findall(r"\bCLIENTDESK_[A-Z0-9_]*[A-Z0-9]\b", f.read_text())
    }
    assert named, "the scan must find the settings the code uses"
    assert named - {s.name for s in SETTINGS} == set()


def test_defaults_come_from_the_table_when_a_setting_is_unset_or_empty():
    defaults = load_settings({})
    assert defaults.idle_minutes == 15
    assert defaults.cookie_name == "clientdesk_auth"
    assert defaults.auto_migrate is True
    assert defaults.demo_mode is False
    assert defaults.db_write_timeout_seconds == 10.0
    assert defaults.database_url == f"sqlite:///{config.PROJECT_ROOT / 'data' / 'clientdesk.db'}"
    assert load_settings({"CLIENTDESK_IDLE_MINUTES": ""}).idle_minutes == 15


def test_a_setting_is_read_with_its_type():
    env = {
        "CLIENTDESK_IDLE_MINUTES": "30",
        "CLIENTDESK_DB_POOL_TIMEOUT": "2.5",
        "CLIENTDESK_DEMO": "yes",
        "CLIENTDESK_AUTO_MIGRATE": "0",
        "CLIENTDESK_DATA_DIR": "/srv/desk",
        "DATABASE_URL": "postgresql://u@h/db",
    }
    s = load_settings(env)
    assert (s.idle_minutes, s.db_pool_timeout_seconds) == (30, 2.5)
    assert (s.demo_mode, s.auto_migrate) == (True, False)
    assert s.data_dir == Path("/srv/desk")
    assert s.database_url == "postgresql+psycopg://u@h/db"
    assert setting("CLIENTDESK_SMTP_PORT", {}) is None
    assert mail.mail_settings(Path("/x"), env={"CLIENTDESK_SMTP_SECURITY": "tls"}).port == 465
    assert forms.upload_limit_bytes({"CLIENTDESK_MAX_UPLOAD_MB": "2"}) == 2 * 1024 * 1024
    assert portal.portal_settings({}).invite_hours == 72


def test_a_value_of_the_wrong_type_names_the_setting_but_not_the_value():
    with pytest.raises(ConfigurationError) as refused:
        load_settings({"CLIENTDESK_DB_POOL_SIZE": "hunter2"})
    assert "CLIENTDESK_DB_POOL_SIZE" in str(refused.value)
    assert "hunter2" not in str(refused.value)


def test_the_process_environment_is_read_when_no_mapping_is_given(monkeypatch):
    monkeypatch.setenv("CLIENTDESK_LOCKOUT_ATTEMPTS", "7")
    assert load_settings().lockout_attempts == 7
    monkeypatch.delenv("CLIENTDESK_LOCKOUT_ATTEMPTS")
    assert load_settings().lockout_attempts == 5
