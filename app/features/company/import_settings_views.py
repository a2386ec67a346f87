"""/admin/company/import-settings: the company's default for inviting users created by a CSV
import (read: `users:import_csv` or `company:manage_settings`; change: `company:manage_settings`)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView

from app.api import BEARER, BaseSchema, Blueprint, request_session
from app.auth import current_user, require_any_permission, require_permission
from app.features.company import import_settings as service

blp = Blueprint(
    "company_import_settings",
    __name__,
    url_prefix="/admin/company",
    description="Company defaults for the CSV user import",
)

MANAGE = "company:manage_settings"
READ_ANY = ("users:import_csv", MANAGE)


class StrictBoolean(ma.fields.Boolean):
    """JSON true or false only: "yes", 1 or "true" are refused rather than guessed."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if isinstance(value, bool):
            return value
        raise self.make_error("invalid", input=value)


_DESCRIPTION = (
    "Invite users created by a CSV import whose request has no sendEmails: true or false, "
    "or null to follow the server default (IMPORT_SEND_INVITES)"
)


class ImportSettingsBody(BaseSchema):
    sendInvitesOnImport = StrictBoolean(
        required=True, allow_none=True, metadata={"description": _DESCRIPTION}
    )


class ImportSettingsSchema(ma.Schema):
    sendInvitesOnImport = ma.fields.Boolean(
        attribute="send_invites_on_import", allow_none=True, metadata={"description": _DESCRIPTION}
    )
    effective = ma.fields.Boolean(
        metadata={"description": "Whether an import without sendEmails invites its users"}
    )


@blp.route("/import-settings")
class CompanyImportSettings(MethodView):
    @require_any_permission(*READ_ANY)
    @blp.response(200, ImportSettingsSchema)
    @blp.alt_response(403, description="Missing users:import_csv and company:manage_settings")
    @blp.doc(security=BEARER)
    def get(self) -> service.ImportSettings:
        """The company's invite default for CSV imports, and what an import without sendEmails does."""
        return service.get_import_settings(request_session(), current_user().company_id)

    @require_permission(MANAGE)
    @blp.arguments(ImportSettingsBody)
    @blp.response(200, ImportSettingsSchema)
    @blp.alt_response(400, description="sendInvitesOnImport missing or not true, false or null")
    @blp.alt_response(403, description="Missing company:manage_settings")
    @blp.doc(security=BEARER)
    def patch(self, body: dict[str, Any]) -> service.ImportSettings:
        """Set the default (true or false), or clear it with null to follow IMPORT_SEND_INVITES."""
        session = request_session()
        caller = current_user()
        result = service.update_import_settings(
            session, caller.company_id, body["sendInvitesOnImport"], caller.id
        )
        session.commit()
        return result
