"""Admin management of a company's users (contract §7). Every query is scoped by company_id;
an id of another company is "not found". Functions never commit: the view owns the transaction,
and each mutation writes its audit entry in that same transaction."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Select, and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.api import format_utc, page_fields
from app.errors import Conflict, Invalid, NotFound, Unavailable
from app.features.audit import service as audit
from app.features.auth import service as auth_service
from app.features.company import domains
from app.features.compliments.models import Compliment
from app.features.emails import service as emails
from app.features.identity.catalogue import EMPLOYEE_ROLE
from app.features.identity.models import Department, JobTitle, User
from app.features.roles.authority import require_authority_over
from app.features.users import onboarding
from app.features.wallets.models import BalanceType, TransactionType, Wallet, WalletTransaction
from app.jobs import enqueue
from app.jobs.registry import get_task

WELCOME_EMAIL_KIND = "users.send_welcome_email"
RESET_LINK_TTL = timedelta(hours=24)
EMAIL_EXISTS = "Email already exists in this company"
USER_NOT_FOUND = "User not found"

_SORT = {
    "name": User.name,
    "email": User.email,
    "createdAt": User.created_at,
    "lastLogin": User.last_login_at,
}


def _not_found() -> NotFound:
    return NotFound(USER_NOT_FOUND, "USER_NOT_FOUND")


# --- reading ---------------------------------------------------------------------------------


def _item_query() -> Select[User, str, str, str, str]:
    return (
        select(User, Department.id, Department.name, JobTitle.id, JobTitle.name)
        .outerjoin(Department, Department.id == User.department_id)
        .outerjoin(JobTitle, JobTitle.id == User.job_title_id)
    )


def _item(row: Any) -> dict[str, Any]:
    user, dept_id, dept_name, title_id, title_name = row
    item: dict[str, Any] = {
        "id": user.id,
        "name": user.name,
        "email": user.email,
        "avatar": user.avatar,
        "isActive": user.is_active,
        "createdAt": user.created_at,
        "updatedAt": user.updated_at,
        "lastLogin": user.last_login_at,
    }
    if dept_id is not None:
        item["department"] = {"id": dept_id, "name": dept_name}
    if title_id is not None:
        item["position"] = {"id": title_id, "name": title_name}
    return item


def list_users(session: Session, company_id: str, query: dict[str, Any]) -> dict[str, Any]:
    where = [User.company_id == company_id]
    if query.get("search"):
        pattern = "%" + _escape_like(query["search"].strip()) + "%"
        where.append(or_(User.name.ilike(pattern, escape="\\"), User.email.ilike(pattern, escape="\\")))
    if query.get("status"):
        where.append(User.is_active.is_(query["status"] == "active"))
    if query.get("departmentId"):
        where.append(User.department_id == query["departmentId"])
    if query.get("jobTitleId"):
        where.append(User.job_title_id == query["jobTitleId"])
    total = int(session.scalar(select(func.count()).select_from(User).where(*where)) or 0)
    column = _SORT.get(query.get("sortBy") or "createdAt", User.created_at)
    order = column.asc().nulls_last() if query.get("sortOrder") == "asc" else column.desc().nulls_last()
    page, limit = query["page"], query["limit"]
    rows = session.execute(
        _item_query().where(*where).order_by(order, User.id).offset((page - 1) * limit).limit(limit)
    ).all()
    items = [_item(r) for r in rows]
    _add_welcome_stats(session, items)
    return {"data": items, **page_fields(total, page, limit)}


def _add_welcome_stats(session: Session, items: list[dict[str, Any]]) -> None:
    """The old API's extras on each list item: welcome emails sent and when the last one went."""
    stats = emails.welcome_stats(session, [item["id"] for item in items])
    for item in items:
        count, last_sent_at = stats.get(item["id"], (0, None))
        item["welcomeEmailSendCount"] = count
        if last_sent_at is not None:
            item["lastWelcomeEmailSentAt"] = last_sent_at


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def get_user(session: Session, company_id: str, user_id: str) -> User:
    user = session.scalars(select(User).where(User.id == user_id, User.company_id == company_id)).first()
    if user is None:
        raise _not_found()
    return user


def user_detail(session: Session, company_id: str, user_id: str) -> dict[str, Any]:
    """The list item plus statistics, all counted by Postgres in one statement."""
    sent = (
        select(func.count())
        .where(Compliment.sender_id == User.id, Compliment.company_id == company_id)
        .scalar_subquery()
    )
    received = (
        select(func.count())
        .where(Compliment.receiver_id == User.id, Compliment.company_id == company_id)
        .scalar_subquery()
    )
    coins = select(Wallet.redeemable_balance).where(Wallet.user_id == User.id).scalar_subquery()
    # A redemption spends redeemable coins: a DEBIT of the REDEEMABLE balance in the ledger.
    redemptions = (
        select(func.count())
        .select_from(WalletTransaction)
        .join(Wallet, Wallet.id == WalletTransaction.wallet_id)
        .where(
            Wallet.user_id == User.id,
            WalletTransaction.transaction_type == TransactionType.DEBIT.value,
            WalletTransaction.balance_type == BalanceType.REDEEMABLE.value,
        )
        .scalar_subquery()
    )
    row = session.execute(
        _item_query()
        .add_columns(sent, received, func.coalesce(coins, 0), redemptions)
        .where(User.id == user_id, User.company_id == company_id)
    ).first()
    if row is None:
        raise _not_found()
    item = _item(row[:5])
    _add_welcome_stats(session, [item])
    item["statistics"] = {
        "complimentsSent": int(row[5]),
        "complimentsReceived": int(row[6]),
        "totalCoins": int(row[7]),
        "redeemptions": int(row[8]),
    }
    return item


# --- writing ---------------------------------------------------------------------------------


def _check_domain(session: Session, company_id: str, email: str) -> None:
    if not domains.email_domain_allowed(session, company_id, email):
        allowed = ", ".join("@" + d.domain for d in domains.list_domains(session, company_id))
        raise Invalid(
            f"Email domain is not allowed for this company. Expected {allowed}", "EMAIL_DOMAIN_NOT_ALLOWED"
        )


def _check_email_free(session: Session, company_id: str, email: str, except_id: str | None = None) -> None:
    query = select(User.id).where(User.company_id == company_id, User.email == email)
    if except_id:
        query = query.where(User.id != except_id)
    if session.scalar(query) is not None:
        raise Conflict(EMAIL_EXISTS, "EMAIL_ALREADY_EXISTS")


def _check_department(session: Session, company_id: str, department_id: str | None) -> None:
    if department_id is not None and (
        session.scalar(
            select(Department.id).where(Department.id == department_id, Department.company_id == company_id)
        )
        is None
    ):
        raise Invalid("Department not found in this company", "INVALID_DEPARTMENT")


def _check_job_title(session: Session, company_id: str, job_title_id: str | None) -> None:
    if job_title_id is not None and (
        session.scalar(
            select(JobTitle.id).where(JobTitle.id == job_title_id, JobTitle.company_id == company_id)
        )
        is None
    ):
        raise Invalid("Job title not found in this company", "INVALID_JOB_TITLE")


@dataclass
class CreatedUser:
    user: User
    temporary_password_url: str | None
    welcome_email_job_id: str | None

    def as_response(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.user.id,
            "name": self.user.name,
            "email": self.user.email,
            "isActive": self.user.is_active,
            "createdAt": self.user.created_at,
        }
        if self.temporary_password_url:
            body["temporaryPasswordUrl"] = self.temporary_password_url
        if self.welcome_email_job_id:
            body["welcomeEmailJobId"] = self.welcome_email_job_id
        return body


def create_user(session: Session, company_id: str, actor_id: str, body: dict[str, Any]) -> CreatedUser:
    """A user with the Employee role and a wallet. Provisioning (contract §11.7): with `sendEmail`
    the welcome email is queued; otherwise the answer carries a password setup link to share."""
    email = body["email"].strip().lower()
    if body.get("sendEmail"):
        _require_welcome_email_task()
    _check_domain(session, company_id, email)
    _check_email_free(session, company_id, email)
    department_id, job_title_id = body.get("departmentId"), body.get("jobTitleId")
    _check_department(session, company_id, department_id)
    _check_job_title(session, company_id, job_title_id)
    try:
        with session.begin_nested():  # a concurrent create of the same email loses here
            user = onboarding.create_user(
                session,
                company_id,
                email,
                body["name"].strip(),
                role=EMPLOYEE_ROLE,
                department_id=department_id,
                job_title_id=job_title_id,
            )
    except IntegrityError:
        raise Conflict(EMAIL_EXISTS, "EMAIL_ALREADY_EXISTS") from None
    if not body.get("isActive", True):
        user.is_active = False
    link = job_id = None
    if body.get("sendEmail"):
        job, _ = enqueue(
            session, WELCOME_EMAIL_KIND, {"user_id": user.id}, company_id=company_id, requested_by=actor_id
        )
        job_id = job.id
    else:
        link = auth_service.password_page_url(auth_service.create_password_setup_token(session, user))
    session.flush()
    audit.record(
        session,
        company_id=company_id,
        actor_id=actor_id,
        action="user.create",
        entity_type="user",
        entity_id=user.id,
        changes={
            "name": user.name,
            "email": email,
            "departmentId": department_id,
            "jobTitleId": job_title_id,
            "isActive": user.is_active,
            "sendEmail": bool(body.get("sendEmail")),
        },
    )
    return CreatedUser(user, link, job_id)


def _require_welcome_email_task() -> None:
    """Refuse before writing anything when no worker task can send the email (503, not 500)."""
    try:
        get_task(WELCOME_EMAIL_KIND)
    except LookupError:
        raise Unavailable("Welcome emails are not available right now", code="EMAIL_UNAVAILABLE") from None


def _snapshot(user: User) -> dict[str, Any]:
    return {
        "name": user.name,
        "email": user.email,
        "departmentId": user.department_id,
        "jobTitleId": user.job_title_id,
        "isActive": user.is_active,
    }


def _refuse_self_deactivation(user: User, actor_id: str) -> None:
    if user.id == actor_id:
        raise Invalid("You cannot deactivate your own account", "CANNOT_DEACTIVATE_SELF")


def _require_authority(
    session: Session,
    company_id: str,
    actor_id: str,
    caller_permissions: frozenset[str],
    user_ids: list[str],
    action: str,
) -> None:
    require_authority_over(
        session,
        company_id=company_id,
        actor_id=actor_id,
        caller_permissions=caller_permissions,
        user_ids=user_ids,
        action=action,
    )


def update_user(
    session: Session,
    company_id: str,
    actor_id: str,
    caller_permissions: frozenset[str],
    user_id: str,
    body: dict[str, Any],
) -> User:
    user = get_user(session, company_id, user_id)
    _require_authority(session, company_id, actor_id, caller_permissions, [user.id], "user.update")
    before = _snapshot(user)
    if "email" in body:
        email = body["email"].strip().lower()
        if email != user.email:
            _check_domain(session, company_id, email)
            _check_email_free(session, company_id, email, except_id=user.id)
            user.email = email
    if "name" in body:
        user.name = body["name"].strip()
    if "departmentId" in body:  # null clears, as the contract says
        _check_department(session, company_id, body["departmentId"])
        user.department_id = body["departmentId"]
    if "jobTitleId" in body:
        _check_job_title(session, company_id, body["jobTitleId"])
        user.job_title_id = body["jobTitleId"]
    if "isActive" in body and body["isActive"] != user.is_active:
        if not body["isActive"]:
            _refuse_self_deactivation(user, actor_id)
            auth_service.revoke_user_refresh_tokens(session, user.id)
        user.is_active = body["isActive"]
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Conflict(EMAIL_EXISTS, "EMAIL_ALREADY_EXISTS") from None
    changes = audit.diff(before, _snapshot(user))
    if changes:
        audit.record(
            session,
            company_id=company_id,
            actor_id=actor_id,
            action="user.update",
            entity_type="user",
            entity_id=user.id,
            changes=changes,
        )
    return user


def deactivate_user(
    session: Session, company_id: str, actor_id: str, caller_permissions: frozenset[str], user_id: str
) -> None:
    """The soft delete: the row stays (compliments and ledger refer to it), the login stops."""
    user = get_user(session, company_id, user_id)
    _refuse_self_deactivation(user, actor_id)
    _require_authority(session, company_id, actor_id, caller_permissions, [user.id], "user.delete")
    if user.is_active:
        user.is_active = False
        auth_service.revoke_user_refresh_tokens(session, user.id)
    session.flush()
    audit.record(
        session,
        company_id=company_id,
        actor_id=actor_id,
        action="user.delete",
        entity_type="user",
        entity_id=user.id,
        changes={"isActive": {"from": True, "to": False}},
    )


def _require_all_in_company(session: Session, company_id: str, user_ids: list[str]) -> list[str]:
    wanted = list(dict.fromkeys(user_ids))
    found = set(session.scalars(select(User.id).where(User.company_id == company_id, User.id.in_(wanted))))
    missing = [u for u in wanted if u not in found]
    if missing:
        raise NotFound(
            f"{len(missing)} user(s) not found in this company", "USER_NOT_FOUND", {"userIds": missing}
        )
    return wanted


def bulk_set_active(
    session: Session,
    company_id: str,
    actor_id: str,
    caller_permissions: frozenset[str],
    user_ids: list[str],
    active: bool,
) -> int:
    """Activate or deactivate; `updated` counts the users whose state actually changed. Nothing
    changes when one of the users is above the caller."""
    ids = _require_all_in_company(session, company_id, user_ids)
    if not active and actor_id in ids:
        raise Invalid("You cannot deactivate your own account", "CANNOT_DEACTIVATE_SELF")
    action = "user.bulk_activate" if active else "user.bulk_deactivate"
    _require_authority(session, company_id, actor_id, caller_permissions, ids, action)
    changed = list(
        session.scalars(
            update(User)
            .where(User.company_id == company_id, User.id.in_(ids), User.is_active.is_not(active))
            .values(is_active=active, updated_at=func.now())
            .returning(User.id)
        )
    )
    if not active:
        for user_id in changed:
            auth_service.revoke_user_refresh_tokens(session, user_id)
    audit.record(
        session,
        company_id=company_id,
        actor_id=actor_id,
        action=action,
        entity_type="user",
        entity_id=None,
        changes={"userIds": sorted(changed)},
    )
    return len(changed)


EXPORT_HEADER = ["id", "name", "email", "department", "position", "isActive", "createdAt"]
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def export_csv(session: Session, company_id: str, actor_id: str, user_ids: list[str]) -> str:
    ids = _require_all_in_company(session, company_id, user_ids)
    rows = session.execute(
        _item_query()
        .where(User.company_id == company_id, User.id.in_(ids))
        .order_by(User.created_at, User.id)
    ).all()
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow(EXPORT_HEADER)
    for row in rows:
        item = _item(row)
        cells = [
            item["id"],
            item["name"],
            item["email"],
            item.get("department", {}).get("name", ""),
            item.get("position", {}).get("name", ""),
            "true" if item["isActive"] else "false",
            format_utc(item["createdAt"]),
        ]
        writer.writerow([safe_cell(c) for c in cells])
    audit.record(
        session,
        company_id=company_id,
        actor_id=actor_id,
        action="user.export",
        entity_type="user",
        entity_id=None,
        changes={"userIds": ids},
    )
    return out.getvalue()


def reset_password_link(
    session: Session, company_id: str, actor_id: str, caller_permissions: frozenset[str], user_id: str
) -> dict[str, str]:
    """A one-time link (24 h) to the set-password page, for the admin to hand over. Refused (403)
    for a user above the caller: the link would let the caller log in as them."""
    user = get_user(session, company_id, user_id)
    _require_authority(session, company_id, actor_id, caller_permissions, [user.id], "user.reset_password")
    if not user.is_active:
        raise Invalid("The user is inactive; activate them first", "USER_INACTIVE")
    token = auth_service.create_password_setup_token(session, user, ttl=RESET_LINK_TTL)
    audit.record(
        session,
        company_id=company_id,
        actor_id=actor_id,
        action="user.reset_password",
        entity_type="user",
        entity_id=user.id,
    )
    return {
        "message": "Password reset link created",
        "ticketUrl": auth_service.password_page_url(token),
        "expiresIn": "24 hours",
    }


# --- §7.1 helper lists -------------------------------------------------------------------------


def _counted(session: Session, model: Any, fk: Any, *where: Any) -> list[dict[str, Any]]:
    """[{id, name, userCount}] by name; userCount counts active users, in one GROUP BY."""
    rows = session.execute(
        select(model.id, model.name, func.count(User.id))
        .outerjoin(User, and_(fk == model.id, User.is_active.is_(True)))
        .where(*where)
        .group_by(model.id, model.name)
        .order_by(model.name, model.id)
    ).all()
    return [{"id": r[0], "name": r[1], "userCount": int(r[2])} for r in rows]


def departments_with_counts(session: Session, company_id: str) -> list[dict[str, Any]]:
    return _counted(session, Department, User.department_id, Department.company_id == company_id)


def job_titles_with_counts(
    session: Session, company_id: str, department_id: str | None = None
) -> list[dict[str, Any]]:
    where = [JobTitle.company_id == company_id]
    if department_id is not None:
        if (
            session.scalar(
                select(Department.id).where(
                    Department.id == department_id, Department.company_id == company_id
                )
            )
            is None
        ):
            raise NotFound("Department not found", "DEPARTMENT_NOT_FOUND")
        where.append(JobTitle.department_id == department_id)
    return _counted(session, JobTitle, User.job_title_id, *where)
