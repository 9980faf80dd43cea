"""Who may do what: the one role × action table, enforced in lib (spec A1).

Pages use ``allowed`` only to decide what to show; every lib function that reads or writes
client data calls ``require`` (or ``require_client_access``) itself, so hiding a page is never
the only protection.
"""

from __future__ import annotations

from dataclasses import dataclass

ADMIN, MANAGER, BILLER, FRONT_DESK, CLINICIAN = (
    "admin",
    "manager",
    "biller",
    "front_desk",
    "clinician",
)
ALL_ROLES = (ADMIN, MANAGER, BILLER, FRONT_DESK, CLINICIAN)

ROLE_LABELS = {
    ADMIN: "Administrator",
    MANAGER: "Practice manager",
    BILLER: "Biller",
    FRONT_DESK: "Front desk",
    CLINICIAN: "Clinician",
}

# action -> roles allowed. Clinicians are further limited to their own clients
# (``require_client_access``). Keep this table the only place a role name is compared.
POLICY: dict[str, frozenset[str]] = {
    "client.view": frozenset(ALL_ROLES),
    "client.create": frozenset({ADMIN, MANAGER, FRONT_DESK}),
    "client.edit": frozenset({ADMIN, MANAGER, FRONT_DESK, CLINICIAN}),
    "client.change_status": frozenset({ADMIN, MANAGER, FRONT_DESK}),
    "insurance.edit": frozenset({ADMIN, MANAGER, BILLER, FRONT_DESK}),
    "client.history": frozenset({ADMIN, MANAGER}),
    "client.export": frozenset({ADMIN, MANAGER, BILLER}),
    "balance.view": frozenset({ADMIN, MANAGER, BILLER}),
    "payment.record": frozenset({ADMIN, MANAGER, BILLER}),
    "ledger.adjust": frozenset({ADMIN, MANAGER, BILLER}),
    "appointment.schedule": frozenset({ADMIN, MANAGER, FRONT_DESK, CLINICIAN}),
    "report.balances": frozenset({ADMIN, MANAGER, BILLER}),
    "report.trends": frozenset({ADMIN, MANAGER, BILLER}),
    "statement.create": frozenset({ADMIN, MANAGER, BILLER}),
    "collections.work": frozenset({ADMIN, MANAGER, BILLER}),
    "digest.receive": frozenset({ADMIN, MANAGER}),
    "reconcile.run": frozenset({ADMIN, MANAGER}),
    "intake.view": frozenset({ADMIN, MANAGER, CLINICIAN}),
    "intake.edit": frozenset({ADMIN, MANAGER, CLINICIAN}),
    "intake.review": frozenset({ADMIN, MANAGER}),
    "intake.questions": frozenset({ADMIN}),
    "documents.view": frozenset(ALL_ROLES),
    "documents.send": frozenset({ADMIN, MANAGER, FRONT_DESK, CLINICIAN}),
    "forms.manage": frozenset({ADMIN}),
    "portal.invite": frozenset({ADMIN, MANAGER, FRONT_DESK}),
    "reminders.edit": frozenset({ADMIN, MANAGER, FRONT_DESK}),
    "settings.manage": frozenset({ADMIN}),
    "users.manage": frozenset({ADMIN}),
    "audit.view": frozenset({ADMIN}),
    "clinicians.manage": frozenset({ADMIN}),
    "clients.import": frozenset({ADMIN, MANAGER}),
    "data.export_all": frozenset({ADMIN}),
    "client.export_record": frozenset({ADMIN, MANAGER}),
}

ACTION_LABELS = {
    "client.view": "view clients",
    "client.create": "add clients",
    "client.edit": "edit client records",
    "client.change_status": "change a client's status",
    "insurance.edit": "edit insurance",
    "client.history": "see a client's history",
    "client.export": "export client lists",
    "balance.view": "see balances",
    "payment.record": "record payments",
    "ledger.adjust": "post adjustments, refunds or reversals",
    "appointment.schedule": "schedule appointments",
    "report.balances": "see the outstanding-balances report",
    "report.trends": "see A/R trends and KPIs",
    "statement.create": "create statements",
    "collections.work": "work the collections list (contacts, plans, reminders)",
    "digest.receive": "receive the weekly A/R digest",
    "reconcile.run": "run reconciliation",
    "intake.view": "see intake answers",
    "intake.edit": "edit intake answers",
    "intake.review": "review intake submissions",
    "intake.questions": "manage intake questions",
    "documents.view": "see documents",
    "documents.send": "send forms",
    "forms.manage": "manage the forms library",
    "portal.invite": "invite clients to the portal",
    "reminders.edit": "change reminder settings",
    "settings.manage": "change practice settings",
    "users.manage": "manage staff accounts",
    "audit.view": "see the audit log",
    "clinicians.manage": "manage clinicians",
    "clients.import": "import clients",
    "data.export_all": "export all of the practice's data",
    "client.export_record": "export a client's whole record",
}


@dataclass(frozen=True)
class Actor:
    """The signed-in staff member on whose behalf lib acts."""

    user_id: int
    username: str
    display_name: str
    role: str
    clinician_id: int | None = None


class PermissionDenied(PermissionError):
    """The policy says no. The message names the role and action, never client data."""


def allowed(actor: Actor, action: str) -> bool:
    if action not in POLICY:
        raise KeyError(f"unknown action {action!r}")
    return actor.role in POLICY[action]


def require(actor: Actor, action: str) -> None:
    if not allowed(actor, action):
        raise PermissionDenied(
            f"Your role ({ROLE_LABELS.get(actor.role, actor.role)}) may not "
            f"{ACTION_LABELS[action]}."
        )


def sees_only_own_clients(actor: Actor) -> bool:
    return actor.role == CLINICIAN


def require_client_access(actor: Actor, action: str, client_clinician_id: int | None) -> None:
    """``require`` plus the clinician rule: clinicians act only on their own clients."""
    require(actor, action)
    if sees_only_own_clients(actor) and (
        actor.clinician_id is None or client_clinician_id != actor.clinician_id
    ):
        raise PermissionDenied("Clinicians can open only the clients assigned to them.")
