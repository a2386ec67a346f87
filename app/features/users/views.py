"""The caller's profile, balance and permissions (contract §4)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from app.api import BEARER, Blueprint, request_session
from app.auth import current_user, login_required
from app.features.users import service
from app.features.users.schemas import (
    MyBalanceSchema,
    PermissionsResponse,
    ProfileResponse,
    ProfileUpdateBody,
)
from app.features.wallets.service import get_balances  # the wallets feature owns balances

blp = Blueprint("users", __name__, url_prefix="/users", description="The caller's profile and balance")


@blp.route("/profile")
class Profile(MethodView):
    @login_required
    @blp.response(200, ProfileResponse)
    @blp.alt_response(404, description="User not found or deactivated")
    @blp.doc(security=BEARER)
    def get(self) -> dict[str, Any]:
        """The caller's profile."""
        caller = current_user()
        user = service.get_profile(request_session(), caller.company_id, caller.id)
        return {"success": True, "data": user}

    @login_required
    @blp.arguments(ProfileUpdateBody)
    @blp.response(200, ProfileResponse)
    @blp.alt_response(404, description="User not found or deactivated")
    @blp.doc(security=BEARER)
    def put(self, body: dict[str, Any]) -> dict[str, Any]:
        """Change the caller's name and avatar URL."""
        caller = current_user()
        session = request_session()
        user = service.get_profile(session, caller.company_id, caller.id)
        service.update_profile(session, user, body["name"], body.get("avatar"), "avatar" in body)
        session.commit()
        return {"success": True, "data": user}


@blp.route("/me/get-my-balance")
class MyBalance(MethodView):
    @login_required
    @blp.response(200, MyBalanceSchema)
    @blp.doc(security=BEARER)
    def get(self) -> dict[str, int]:
        """The caller's compliment (to give) and redeemable (received) balances."""
        compliment, redeemable = get_balances(request_session(), current_user().id)
        return {"complimentBalance": compliment, "redeemableBalance": redeemable}


@blp.route("/me/permissions")
class MyPermissions(MethodView):
    @login_required
    @blp.response(200, PermissionsResponse)
    @blp.doc(security=BEARER)
    def get(self) -> dict[str, Any]:
        """The names of every permission the caller holds."""
        return {"success": True, "data": sorted(current_user().permissions)}
