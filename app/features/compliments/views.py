"""/compliments and /companies/<id>/values: the praise flow of the employee app (contract §6)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from app.api import ApiError, Blueprint, page_count, request_session
from app.auth import current_user, login_required, require_permission
from app.features.compliments import service
from app.features.compliments.schemas import (
    FeedItemSchema,
    HistoryQuerySchema,
    HistorySchema,
    ReceivableUsersSchema,
    SendComplimentResultSchema,
    SendComplimentSchema,
)
from app.features.identity.models import User
from app.features.values import service as values
from app.features.values.models import CompanyValue
from app.features.values.schemas import ValuePublicSchema

blp = Blueprint("compliments", __name__, url_prefix="/compliments", description="Compliments")
company_values = Blueprint(
    "company_values_public", __name__, url_prefix="/companies", description="Company values (praise flow)"
)


@blp.route("/list-receivable-users")
class ReceivableUsers(MethodView):
    @login_required
    @blp.response(200, ReceivableUsersSchema)
    def get(self) -> dict[str, list[User]]:
        """Active colleagues of the caller's company (the caller excluded)."""
        user = current_user()
        return {"users": service.receivable_users(request_session(), user.company_id, user.id)}


@blp.route("/send-compliment")
class SendCompliment(MethodView):
    @require_permission("praise:send")
    @blp.arguments(SendComplimentSchema)
    @blp.response(201, SendComplimentResultSchema)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Send coins with a message for a company value; debit and credit in one transaction."""
        user = current_user()
        session = request_session()
        compliment = service.send_compliment(
            session,
            company_id=user.company_id,
            sender_id=user.id,
            receiver_id=body["receiverId"],
            value_id=body["valueId"],
            coins=body["coins"],
            message=body["message"],
        )
        session.commit()
        record = service.record(compliment)
        return {"message": "Compliment sent successfully!", "compliment": {**record, "data": record}}


@blp.route("/history")
class History(MethodView):
    @login_required
    @blp.arguments(HistoryQuerySchema, location="query")
    @blp.response(200, HistorySchema)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """The caller's sent or received compliments, newest first."""
        user = current_user()
        page, limit = query["page"], query["limit"]
        items, total = service.history(
            request_session(), user.company_id, user.id, query["type"], page, limit
        )
        pages = page_count(total, limit)
        return {
            "compliments": items,
            "metainfo": {
                "currentPage": page,
                "totalPages": pages,
                "totalCount": total,
                "hasNextPage": page < pages,
                "hasPreviousPage": page > 1,
            },
        }


@blp.route("/feed")
class Feed(MethodView):
    @login_required
    @blp.response(200, FeedItemSchema(many=True))
    def get(self) -> list[dict[str, Any]]:
        """The latest 10 public compliments of the caller's company."""
        return service.feed(request_session(), current_user().company_id)


@company_values.route("/<string:company_id>/values")
class CompanyValues(MethodView):
    @login_required
    @company_values.response(200, ValuePublicSchema(many=True))
    def get(self, company_id: str) -> list[CompanyValue]:
        """Active values of the caller's own company (another company's id: 404)."""
        user = current_user()
        if company_id != user.company_id:
            raise ApiError(404, "Company not found")
        return values.list_values(request_session(), user.company_id, active_only=True)
