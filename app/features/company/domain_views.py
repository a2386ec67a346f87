"""/admin/company/domains (contract §11.1; perm `company:manage_settings`)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from app.api import BEARER, Blueprint, request_session
from app.auth import current_user, require_any_permission, require_permission
from app.features.company import domains as service
from app.features.company.domain_schemas import DomainCreateBody, DomainSchema, DomainsReplaceBody
from app.features.company.models import CompanyDomain

blp = Blueprint(
    "company_domains",
    __name__,
    url_prefix="/admin/company/domains",
    description="Email domains accepted for the company's users",
)

PERMISSION = "company:manage_settings"


@blp.route("")
class Domains(MethodView):
    # Read by the user form too (its domain pre-check): whoever may create users may see them.
    @require_any_permission(PERMISSION, "users:create")
    @blp.response(200, DomainSchema(many=True))
    @blp.doc(security=BEARER)
    def get(self) -> list[CompanyDomain]:
        """The company's domains, oldest first."""
        return service.list_domains(request_session(), current_user().company_id)

    @require_permission(PERMISSION)
    @blp.arguments(DomainsReplaceBody)
    @blp.response(200, DomainSchema(many=True))
    @blp.alt_response(400, description="Empty list or an invalid domain")
    @blp.doc(security=BEARER)
    def put(self, body: dict[str, Any]) -> list[CompanyDomain]:
        """Replace the whole list (at least one domain)."""
        session = request_session()
        caller = current_user()
        rows = service.replace_domains(session, caller.company_id, body["domains"], caller.id)
        session.commit()
        return rows

    @require_permission(PERMISSION)
    @blp.arguments(DomainCreateBody)
    @blp.response(201, DomainSchema)
    @blp.alt_response(409, description="The domain already exists")
    @blp.doc(security=BEARER)
    def post(self, body: dict[str, Any]) -> CompanyDomain:
        """Add one domain (409 when the company already has it)."""
        session = request_session()
        caller = current_user()
        row = service.add_domain(session, caller.company_id, body["domain"], caller.id)
        session.commit()
        return row


@blp.route("/<domain_id>")
class Domain(MethodView):
    @require_permission(PERMISSION)
    @blp.response(204)
    @blp.alt_response(400, description="It is the company's last domain")
    @blp.alt_response(404, description="No such domain in the company")
    @blp.doc(security=BEARER)
    def delete(self, domain_id: str) -> None:
        """Remove a domain (400 when it is the last one)."""
        session = request_session()
        caller = current_user()
        service.remove_domain(session, caller.company_id, domain_id, caller.id)
        session.commit()
