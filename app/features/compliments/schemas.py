"""Compliment schemas (contract §6): bare bodies, camelCase."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from app.api import BaseSchema, UtcDateTime
from app.features.compliments.service import MAX_COINS, MAX_MESSAGE, MIN_COINS, MIN_MESSAGE


class WholeNumber(ma.fields.Integer):
    """An integer; numeric strings and integral floats are coerced, 10.5 and booleans are refused."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


def _multiple_of_five(value: int) -> None:
    if value % 5:
        raise ma.ValidationError("Must be a multiple of 5.")


def _message_length(value: str) -> None:
    if not MIN_MESSAGE <= len(value.strip()) <= MAX_MESSAGE:
        raise ma.ValidationError(f"Length must be between {MIN_MESSAGE} and {MAX_MESSAGE} characters.")


class ReceivableUserSchema(BaseSchema):
    id = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    email = ma.fields.String(required=True)
    avatar = ma.fields.String(allow_none=True, required=True)


class ReceivableUsersSchema(BaseSchema):
    users = ma.fields.List(ma.fields.Nested(ReceivableUserSchema), required=True)


class SendComplimentSchema(BaseSchema):
    receiverId = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=64))
    valueId = WholeNumber(required=True, validate=ma.validate.Range(min=1, max=2**31 - 1))
    coins = WholeNumber(
        required=True, validate=[ma.validate.Range(min=MIN_COINS, max=MAX_COINS), _multiple_of_five]
    )
    message = ma.fields.String(required=True, validate=_message_length)


class ComplimentRecordSchema(BaseSchema):
    id = ma.fields.String(required=True)
    senderId = ma.fields.String(required=True)
    receiverId = ma.fields.String(required=True)
    companyId = ma.fields.String(required=True)
    valueId = WholeNumber(required=True)
    message = ma.fields.String(required=True)
    coins = ma.fields.Integer(required=True)
    isPublic = ma.fields.Boolean(required=True)
    createdAt = UtcDateTime(required=True)


class SentComplimentSchema(ComplimentRecordSchema):
    data = ma.fields.Nested(
        ComplimentRecordSchema,
        metadata={"description": "The same record again, where the previous API put it (compatibility)"},
    )


class SendComplimentResultSchema(BaseSchema):
    message = ma.fields.String(required=True)
    compliment = ma.fields.Nested(SentComplimentSchema, required=True)


class HistoryQuerySchema(BaseSchema):
    type = ma.fields.String(required=True, validate=ma.validate.OneOf(["sent", "received"]))
    page = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1))
    limit = ma.fields.Integer(load_default=20, validate=ma.validate.Range(min=1, max=100))


class ComplimentPersonSchema(BaseSchema):
    id = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    email = ma.fields.String(required=True)
    avatar = ma.fields.String(allow_none=True, required=True)


class HistoryValueSchema(BaseSchema):
    id = ma.fields.Integer(required=True)
    title = ma.fields.String(required=True)
    description = ma.fields.String(allow_none=True, required=True)
    iconName = ma.fields.String(allow_none=True, required=True)
    iconColor = ma.fields.String(allow_none=True, required=True)


class HistoryItemSchema(ComplimentRecordSchema):
    sender = ma.fields.Nested(ComplimentPersonSchema, required=True)
    receiver = ma.fields.Nested(ComplimentPersonSchema, required=True)
    companyValue = ma.fields.Nested(HistoryValueSchema, required=True)


class ComplimentMetainfoSchema(BaseSchema):
    currentPage = ma.fields.Integer(required=True)
    totalPages = ma.fields.Integer(required=True)
    totalCount = ma.fields.Integer(required=True)
    hasNextPage = ma.fields.Boolean(required=True)
    hasPreviousPage = ma.fields.Boolean(required=True)


class HistorySchema(BaseSchema):
    compliments = ma.fields.List(ma.fields.Nested(HistoryItemSchema), required=True)
    metainfo = ma.fields.Nested(ComplimentMetainfoSchema, required=True)


class FeedPersonSchema(BaseSchema):
    id = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    avatar = ma.fields.String(allow_none=True, required=True)
    department = ma.fields.String(allow_none=True, required=True)


class FeedValueSchema(BaseSchema):
    id = ma.fields.Integer(required=True)
    title = ma.fields.String(required=True)
    iconName = ma.fields.String(allow_none=True, required=True)
    iconColor = ma.fields.String(allow_none=True, required=True)


class FeedItemSchema(BaseSchema):
    id = ma.fields.String(required=True)
    coins = ma.fields.Integer(required=True)
    message = ma.fields.String(required=True)
    sender = ma.fields.Nested(FeedPersonSchema, required=True)
    receiver = ma.fields.Nested(FeedPersonSchema, required=True)
    companyValue = ma.fields.Nested(FeedValueSchema, required=True)
    createdAt = UtcDateTime(required=True)
    timeAgo = ma.fields.String(required=True, metadata={"description": 'Portuguese, e.g. "há 5 minutos"'})
