"""OpenAPI descriptions of the member API: bodies, headers and an example of each error."""

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse

from consentsite.api_errors import member_error_body
from members.api import serializers as s
from members.models import IdentifierType

TAGS = ["Member API"]
# `?channels=`: EMAIL and/or SMS, comma-separated, in any case.
_CHANNEL = r"\s*([Ee][Mm][Aa][Ii][Ll]|[Ss][Mm][Ss])\s*"
CHANNELS_PATTERN = rf"^{_CHANNEL}(,{_CHANNEL})*$"


def _errors(*cases: tuple[int, str, str]) -> dict[int, OpenApiResponse]:
    """Error responses by status, each with a named example per case (status, name, message)."""
    by_status: dict[int, list[OpenApiExample]] = {}
    for status_code, name, message in cases:
        by_status.setdefault(status_code, []).append(
            OpenApiExample(name, value=member_error_body(status_code, message))
        )
    return {
        status_code: OpenApiResponse(s.MemberErrorSerializer, examples=by_status[status_code])
        for status_code in sorted(by_status)
    }


API_KEY = (401, "No or invalid API key", "Authentication credentials were not provided.")
SESSION = (401, "Invalid session", s.SESSION_INVALID)
METHOD = (405, "Method not allowed", 'Method "DELETE" not allowed.')
THROTTLED = (429, "Throttled", "Request was throttled. Expected available in 60 seconds.")
BODY_ERRORS = (
    (400, "Malformed JSON", "Request body is not valid JSON."),
    (400, "Body not a JSON object", s.BODY_NOT_OBJECT),
    (413, "Body too large", "The request body is larger than 1048576 bytes."),
    (415, "Wrong content type", s.CONTENT_TYPE_NOT_JSON),
    (415, "Unsupported content encoding", "Content-Encoding 'gzip' is not supported."),
)

RESPONSE_HEADERS = [
    OpenApiParameter(name, OpenApiTypes.STR, OpenApiParameter.HEADER, response=True, description=d)
    for name, d in (
        ("MCK-APPID", "The application id (`APP_ID`)."),
        ("MCK-MSGID", "`mck-<uuid4>`, new for every response."),
        ("MCK-MSGTIMESTAMP", "When the response was made, ISO-8601 UTC."),
        (
            "MCK_CORRELATIONID",
            "The request's `MCK_CORRELATIONID` header, else the path's correlation id, else "
            "`CORRELATION_ID_NOT_PROVIDED_IN_REQUEST`.",
        ),
    )
]
CORRELATION_HEADER = OpenApiParameter(
    "MCK-CORRELATIONID",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="Echoed in the `MCK_CORRELATIONID` response header.",
)
CORRELATION_ID_PATH = OpenApiParameter(
    "correlation_id",
    # In the schema's (ECMA-262) spelling: ^ and $ for Python's \A and \Z.
    {
        "type": "string",
        "pattern": s.CORRELATION_ID_PATTERN.pattern.replace("\\A", "^").replace("\\Z", "$"),
    },
    OpenApiParameter.PATH,
    description="The correlation id of a session started with the sessions endpoint.",
)


def _operation(**kwargs: Any) -> dict[str, Any]:
    parameters = [*kwargs.pop("parameters", []), CORRELATION_HEADER, *RESPONSE_HEADERS]
    return {"tags": TAGS, "parameters": parameters, **kwargs}


START_SESSION = _operation(
    operation_id="member_session_start",
    summary="Start a session",
    description=(
        "Bind a client-chosen `correlationId` to a member for `MEMBER_SESSION_TTL` seconds. "
        "Posting it again for the same member refreshes it; while it is bound to another "
        "member it is refused (409). Emails and phone numbers are normalised before lookup."
    ),
    parameters=[
        OpenApiParameter(
            "identifier",
            OpenApiTypes.STR,
            OpenApiParameter.PATH,
            description="The member's identifier, of the type `X-Identifier-Type` names.",
        ),
        OpenApiParameter(
            "X-Identifier-Type",
            OpenApiTypes.STR,
            OpenApiParameter.HEADER,
            enum=IdentifierType.values,
            default=IdentifierType.ACCOUNT_ID,
        ),
    ],
    request=s.SessionStartSerializer,
    responses={
        200: s.SessionSerializer,
        **_errors(
            *BODY_ERRORS,
            (400, "Missing correlationId", "correlationId is required."),
            (400, "Invalid channel", "channel must be one of APP, STORE, POS, PARTNER, WEBSITE."),
            (
                400,
                "Invalid identifier type",
                "X-Identifier-Type must be one of ACCOUNT_ID, LOYALTY_ID, EXTERNAL_ID, EMAIL, "
                "PHONE_NUMBER.",
            ),
            (400, "Invalid email", "'not-an-email' is not a valid email address."),
            API_KEY,
            (404, "Unknown member", s.MEMBER_NOT_FOUND),
            METHOD,
            (409, "Correlation id in use", s.SESSION_CONFLICT),
            (409, "Ambiguous identifier", s.MEMBER_AMBIGUOUS.format(identifier_type="EMAIL")),
            THROTTLED,
        ),
    },
)

UPDATE_SUBSCRIPTION = _operation(
    operation_id="member_marketing_subscription_update",
    summary="Update marketing subscription status",
    description=(
        "Set the member's email preference (the `LOYALTY` topic) and/or SMS preference (the "
        "default shortcode): `OPT_IN` or `OPT_OUT`. Checks run in order and the first failure "
        "is reported: API key, session, body, unknown channels, no channel, email then sms "
        "preference, the member's addresses. Both channels change, or neither."
    ),
    parameters=[CORRELATION_ID_PATH],
    request=s.MarketingSubscriptionSerializer,
    responses={
        200: OpenApiResponse(
            s.MessageSerializer,
            examples=[
                OpenApiExample("Updated", value={"message": s.SUBSCRIPTION_UPDATED}),
            ],
        ),
        **_errors(
            *BODY_ERRORS,
            (400, "Invalid preference option", s.INVALID_PREFERENCE.format(channel="email")),
            (400, "Invalid channel", s.INVALID_CHANNEL.format(channels="push")),
            (400, "No email preference", s.PREFERENCE_NOT_SENT.format(channel="email")),
            (400, "No sms preference", s.PREFERENCE_NOT_SENT.format(channel="sms")),
            (400, "No preference", s.PREFERENCE_REQUIRED),
            (400, "No email address", s.NO_ADDRESS["email"]),
            (400, "No phone number", s.NO_ADDRESS["sms"]),
            API_KEY,
            SESSION,
            METHOD,
            THROTTLED,
        ),
    },
    examples=[
        OpenApiExample(
            "Email in, SMS out",
            value={"email": {"preference": "OPT_IN"}, "sms": {"preference": "OPT_OUT"}},
            request_only=True,
        ),
    ],
)

GET_PREFERENCES = _operation(
    operation_id="member_marketing_preferences_get",
    summary="Get marketing preferences",
    description=(
        "The member's preferences as the consent ledger holds them, whichever door changed them: "
        "`lastStatusUpdateSource` is `CUX` (member API), `CONSOLE` (admin or command) or `ESP` "
        "(consent API, a confirmation/unsubscribe link or an SMS keyword)."
    ),
    parameters=[
        CORRELATION_ID_PATH,
        OpenApiParameter(
            "channels",
            {"type": "string", "pattern": CHANNELS_PATTERN},
            OpenApiParameter.QUERY,
            description="The channels to return, comma-separated: `EMAIL`, `SMS` (default both).",
            examples=[OpenApiExample("Email only", value="EMAIL")],
        ),
    ],
    request=None,
    responses={
        200: OpenApiResponse(
            s.MarketingPreferencesSerializer,
            examples=[
                OpenApiExample(
                    "Email opted in, SMS not set",
                    value={
                        "EMAIL": {
                            "LOYALTY": {
                                "status": "OPTED_IN",
                                "lastStatusUpdateDt": "2025-04-11T17:30:52.123Z",
                                "lastStatusUpdateSource": "CUX",
                            }
                        },
                        "SMS": {"32123": {"status": "NOT_SET"}},
                    },
                ),
            ],
        ),
        **_errors(
            (400, "Invalid channel", s.INVALID_CHANNEL.format(channels="PUSH")),
            API_KEY,
            SESSION,
            METHOD,
            THROTTLED,
        ),
    },
)
