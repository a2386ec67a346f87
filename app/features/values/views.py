"""/admin/company/values (perm `company:manage_settings`), bare bodies (contract §9)."""

from __future__ import annotations

import re
from typing import Any

from flask.views import MethodView

from app.api import ApiError, Blueprint, request_session
from app.auth import current_user, require_permission
from app.features.values import service
from app.features.values.models import CompanyValue
from app.features.values.schemas import (
    ValueAdminSchema,
    ValueCreateSchema,
    ValueReorderResultSchema,
    ValueReorderSchema,
    ValueUpdateSchema,
)

blp = Blueprint(
    "company_values", __name__, url_prefix="/admin/company/values", description="Company values (admin)"
)

PERMISSION = "company:manage_settings"
_DIGITS = re.compile(r"^[0-9]+$")


def _value_id(raw: str) -> int:
    """The contract answers 400 for a non-integer id (and 404 for an unknown one)."""
    if not _DIGITS.match(raw):
        raise ApiError(400, "The value id must be an integer")
    if len(raw) > 10 or int(raw) > 2**31 - 1:  # beyond the integer column: cannot exist
        raise ApiError(404, "Company value not found")
    return int(raw)


@blp.route("")
class Values(MethodView):
    @require_permission(PERMISSION)
    @blp.response(200, ValueAdminSchema(many=True))
    def get(self) -> list[CompanyValue]:
        """Every value of the company (active and inactive), by `order`."""
        return service.list_values(request_session(), current_user().company_id)

    @require_permission(PERMISSION)
    @blp.arguments(ValueCreateSchema)
    @blp.response(201, ValueAdminSchema)
    def post(self, body: dict[str, Any]) -> CompanyValue:
        """Create an active value at the end of the order (409 on a duplicate title or a 9th value)."""
        session = request_session()
        value = service.create_value(session, current_user().company_id, body)
        session.commit()
        return value


# Registered before /<value_id>; Werkzeug also ranks the static segment first.
@blp.route("/reorder")
class Reorder(MethodView):
    @require_permission(PERMISSION)
    @blp.arguments(ValueReorderSchema)
    @blp.response(200, ValueReorderResultSchema)
    def patch(self, body: dict[str, Any]) -> dict[str, Any]:
        """Set `order` = position + 1 for the ids given; returns every value."""
        session = request_session()
        values = service.reorder_values(session, current_user().company_id, body["ordered_ids"])
        session.commit()
        return {"message": "Values reordered successfully", "values": values}


@blp.route("/<value_id>")
class Value(MethodView):
    @require_permission(PERMISSION)
    @blp.response(200, ValueAdminSchema)
    def get(self, value_id: str) -> CompanyValue:
        """One value of the company (404 for another company's)."""
        return service.get_value(request_session(), current_user().company_id, _value_id(value_id))

    @require_permission(PERMISSION)
    @blp.arguments(ValueUpdateSchema)
    @blp.response(200, ValueAdminSchema)
    def patch(self, body: dict[str, Any], value_id: str) -> CompanyValue:
        """Edit, deactivate or reactivate (`{is_active:true}`, within the 8-active limit)."""
        session = request_session()
        value = service.update_value(session, current_user().company_id, _value_id(value_id), body)
        session.commit()
        return value

    @require_permission(PERMISSION)
    @blp.response(204)
    def delete(self, value_id: str) -> None:
        """Soft delete (`is_active=false`)."""
        session = request_session()
        service.deactivate_value(session, current_user().company_id, _value_id(value_id))
        session.commit()
