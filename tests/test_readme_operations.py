"""What the README tells a practice about running ClientDesk is true of the code it ships with:
the worker's systemd unit runs the real command, and the trusted-proxy setting it names is the
one the installed Streamlit and uvicorn honour (issue 12 items 9 and 10)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import uvicorn
from streamlit.web.server.starlette import starlette_server

from lib import cli

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def _unit() -> dict[str, str]:
    (block,) = [b for b in re.findall(r"```ini\n(.*?)```", README, re.S) if "[Service]" in b]
    return dict(line.split("=", 1) for line in block.splitlines() if "=" in line and line[0] != "#")


def test_the_systemd_unit_runs_the_worker_and_stops_it_with_sigterm():
    unit = _unit()
    command = shlex.split(unit["ExecStart"])
    assert command[1:] == ["-m", "lib.cli", "worker"]
    assert command[0].endswith("/.venv/bin/python")
    assert cli.build_parser().parse_args(command[3:]).func is cli.cmd_worker
    assert unit["KillSignal"] == "SIGTERM"  # the worker's clean stop
    assert unit["Restart"] == "on-failure"
    assert "EnvironmentFile" in unit  # the same settings as the app


def test_the_trusted_proxy_setting_named_in_the_readme_is_the_one_uvicorn_uses(monkeypatch):
    assert "FORWARDED_ALLOW_IPS" in README
    # Streamlit passes uvicorn neither proxy_headers nor forwarded_allow_ips: uvicorn's
    # defaults apply, which read the environment variable.
    kwargs = starlette_server._get_uvicorn_config_kwargs()
    assert not {"proxy_headers", "forwarded_allow_ips"} & set(kwargs)
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "10.0.0.5")
    config = uvicorn.Config(app=lambda scope, receive, send: None, **kwargs)
    assert (config.proxy_headers, config.forwarded_allow_ips) == (True, "10.0.0.5")
    monkeypatch.delenv("FORWARDED_ALLOW_IPS")
    default = uvicorn.Config(app=lambda scope, receive, send: None, **kwargs)
    assert default.forwarded_allow_ips == "127.0.0.1,::1"  # as the README says
