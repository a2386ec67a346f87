"""/admin/company/info and /admin/company/coin-economy (contract §9): bare objects, no envelope."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from app.api import BEARER, Blueprint, request_session
from app.auth import current_user, login_required, require_permission
from app.features.company import service
from app.features.company.models import CompanySettings
from app.features.company.schemas import (
    CoinEconomyBody,
    CoinEconomySchema,
    CompanyInfoBody,
    CompanyInfoSchema,
    CompanyInfoUpdatedSchema,
)
from app.features.identity.models import Company

blp = Blueprint(
    "company", __name__, url_prefix="/admin/company", description="Company info and coin economy settings"
)


@blp.route("/info")
class CompanyInfo(MethodView):
    @login_required
    @blp.response(200, CompanyInfoSchema)
    @blp.doc(security=BEARER)
    def get(self) -> Company:
        """The caller's company (any authenticated user)."""
        return service.get_company(request_session(), current_user().company_id)

    @require_permission("company:manage_settings")
    @blp.arguments(CompanyInfoBody)
    @blp.response(200, CompanyInfoUpdatedSchema)
    @blp.alt_response(403, description="Missing company:manage_settings")
    @blp.doc(security=BEARER)
    def patch(self, body: dict[str, Any]) -> Company:
        """Change the name, logo URL ("" or null clears it) or IANA timezone."""
        session = request_session()
        company = service.update_company_info(session, current_user().company_id, body)
        session.commit()
        return company


@blp.route("/coin-economy")
class CoinEconomy(MethodView):
    @login_required
    @blp.response(200, CoinEconomySchema)
    @blp.doc(security=BEARER)
    def get(self) -> CompanySettings:
        """Weekly allowance and renewal day (created with defaults 100 / Monday on first read)."""
        session = request_session()
        settings = service.get_coin_economy(session, current_user().company_id)
        session.commit()
        return settings

    @require_permission("company:manage_settings")
    @blp.arguments(CoinEconomyBody)
    @blp.response(200, CoinEconomySchema)
    @blp.alt_response(403, description="Missing company:manage_settings")
    @blp.doc(security=BEARER)
    def patch(self, body: dict[str, int]) -> CompanySettings:
        """Change the weekly renewal amount (50 to 500) and renewal day (1 = Monday ... 7 = Sunday)."""
        session = request_session()
        settings = service.update_coin_economy(session, current_user().company_id, body)
        session.commit()
        return settings
