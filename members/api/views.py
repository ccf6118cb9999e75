"""The member API (docs/member-api.md): sessions and a member's marketing preferences.

Every response of this API, errors included, carries the source API's headers
(`members/api/headers.py`) and, for errors, its envelope `{"statusCode", "errorCode",
"errorMessage"}` (rendered by the one exception handler). The order of the checks is the
contract's: API key (DRF authentication), session (`get_object`, first thing in an action), then
the body, parsed here and validated by the serializers.
"""

import dataclasses
import json
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.exceptions import AuthenticationFailed, ParseError
from rest_framework.request import Request
from rest_framework.response import Response

from consents.models import Door
from consentsite.api_errors import MEMBER, ApiError
from consentsite.apiviews import ContractApiMixin, is_read_as_json
from consentsite.change_context import change_context
from consentsite.parsers import refuse_content_encoding, refuse_deep_json
from members.api import schema
from members.api.serializers import (
    CONTENT_TYPE_NOT_JSON,
    SESSION_CONFLICT,
    SESSION_INVALID,
    SUBSCRIPTION_UPDATED,
    MarketingPreferencesSerializer,
    MarketingSubscriptionSerializer,
    MemberIdentifierSerializer,
    MessageSerializer,
    PreferencesQuerySerializer,
    SessionSerializer,
    SessionStartSerializer,
    is_correlation_id,
)
from members.exceptions import CorrelationIdInUse
from members.models import IdentifierType, MemberSession
from members.preferences import marketing_preferences, set_marketing_preferences
from members.selectors import active_session


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON.")


class MemberApiMixin(ContractApiMixin):
    """What every view of the member API shares: its error envelope and its lenient reading of
    a JSON body. (Its headers are set by MemberApiHeadersMiddleware, for every response.)"""

    api_error_style = MEMBER

    def json_body(self) -> Any:
        """The request body as a JSON value, or an error (400, 415) in the member envelope.

        An empty body is an empty object; a body is read as JSON when `is_read_as_json` says so
        (no content type, or curl's default form type, rather than telling the caller that its
        preferences are missing), and any other type is a 415. The value may be any JSON
        value: whether it is an object is the serializer's first check, so that every fault is
        reported in the contract's order.
        """
        request = self.request
        raw = request.body  # its size was checked before any view (MAX_BODY_BYTES)
        if not raw.strip():
            return {}
        refuse_content_encoding(request)
        if not is_read_as_json(request.content_type):
            raise ApiError(415, CONTENT_TYPE_NOT_JSON)
        refuse_deep_json(raw)
        try:
            return json.loads(raw, parse_constant=_refuse_constant)
        except (ValueError, RecursionError) as exc:
            raise ParseError("Request body is not valid JSON.") from exc


class SessionBoundViewSet(MemberApiMixin, viewsets.GenericViewSet):
    """An endpoint of `/client/users/<correlation_id>/…`: its object is the member's session."""

    lookup_field = "correlation_id"

    def get_object(self) -> MemberSession:
        """The active session of the path's correlation id started by this request's client;
        anything else (another client's session included) is a 401."""
        correlation_id = self.kwargs[self.lookup_field]
        session = None
        if is_correlation_id(correlation_id):
            session = active_session(correlation_id, self.request.auth)
        if session is None:
            raise AuthenticationFailed(SESSION_INVALID)
        return session


class MemberSessionViewSet(MemberApiMixin, viewsets.ViewSet):
    # A session changes no consent, and reading preferences needs one: read-only keys may start it.
    read_actions = {"create"}

    @extend_schema(**schema.START_SESSION)
    def create(self, request: Request, identifier: str) -> Response:
        """Bind a client-chosen correlation id to a member."""
        body = SessionStartSerializer(data=self.json_body())
        body.is_valid(raise_exception=True)
        lookup = MemberIdentifierSerializer(
            data={
                "identifierType": request.headers.get(
                    "X-Identifier-Type", IdentifierType.ACCOUNT_ID
                ),
                "identifier": identifier,
            }
        )
        lookup.is_valid(raise_exception=True)
        try:
            session = MemberSession.objects.start(
                correlation_id=body.validated_data["correlationId"],
                member=lookup.validated_data["member"],
                channel=body.validated_data["channel"],
                api_key=request.auth,
            )
        except CorrelationIdInUse as exc:
            raise ApiError(409, SESSION_CONFLICT) from exc
        return Response(SessionSerializer(session).data)


class MarketingSubscriptionViewSet(SessionBoundViewSet):
    @extend_schema(**schema.UPDATE_SUBSCRIPTION)
    def update(self, request: Request, correlation_id: str) -> Response:
        """Set the member's email (LOYALTY) and/or SMS (default shortcode) preference."""
        session = self.get_object()
        member = session.member
        body = MarketingSubscriptionSerializer(data=self.json_body(), context={"member": member})
        body.is_valid(raise_exception=True)
        context = change_context(request, door=Door.MEMBER_API, actor=str(member.account_id))
        set_marketing_preferences(
            member=member,
            preferences=body.validated_data,
            session_channel=session.channel,
            context=dataclasses.replace(
                context,
                note=f"API key {request.auth.name}, correlation id {session.correlation_id}",
            ),
        )
        return Response(MessageSerializer({"message": SUBSCRIPTION_UPDATED}).data)


class MarketingPreferencesViewSet(SessionBoundViewSet):
    @extend_schema(**schema.GET_PREFERENCES)
    def retrieve(self, request: Request, correlation_id: str) -> Response:
        """The member's email and SMS preferences as the ledger holds them."""
        member = self.get_object().member
        query = PreferencesQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        preferences = marketing_preferences(member, query.validated_data["channels"])
        return Response(MarketingPreferencesSerializer(preferences).data)
