"""`POST /sms/inbound`: the messaging provider's webhook for messages sent to our numbers.

Twilio's format: a form-encoded body (`MessageSid`, `From`, `To`, `Body`, …) signed with the
account's auth token in `X-Twilio-Signature` over `PUBLIC_BASE_URL` + the path. STOP and START
keywords become ledger changes of the sender's phone consent with door SMS and the message id as
request id; HELP gets its reply; other text, or a message to a number that is not ours, changes
nothing. Replies are TwiML. A refused request gets a plain-text reason and writes nothing.
"""

import dataclasses
import logging
import re
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.db import IntegrityError
from django.http import HttpRequest, HttpResponse, QueryDict
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from consents.addresses import normalize_phone
from consents.exceptions import InvalidAddress
from consents.ledger import consent_upsert
from consents.models import ConsentEvent, ConsentType, Door
from consents.selectors import sms_message_event
from consents.sms.keywords import (
    Action,
    is_programme_number,
    keyword_of,
    ledger_change,
    programme_number,
    reply_for_state,
)
from consentsite.change_context import change_context

logger = logging.getLogger(__name__)

# An inbound message's webhook is a few kilobytes (a body of at most 1,600 characters and the
# provider's parameters): anything much larger is not one.
MAX_WEBHOOK_BYTES = 64 * 1024
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
SIGNATURE_HEADER = "X-Twilio-Signature"
MESSAGE_SID = re.compile(r"^[A-Za-z0-9]{1,64}$")
ACTOR = "SMS sender"


class Refused(Exception):
    """A request answered with an error status and a plain-text reason; nothing is written."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class InboundMessage:
    sid: str
    sender: str  # E.164
    to: str  # as the provider sent it
    text: str


@csrf_exempt  # posted by the provider, authenticated by its signature
@require_POST
def inbound(request: HttpRequest) -> HttpResponse:
    try:
        message = _read(request)
    except Refused as refused:
        return HttpResponse(
            refused.reason, status=refused.status, content_type="text/plain; charset=utf-8"
        )
    if not is_programme_number(message.to):
        logger.warning(
            "Inbound SMS %s came to %r, which is not one of SMS_PROGRAMME_NUMBERS: "
            "answered without a change.",
            message.sid,
            message.to[:64],
        )
        return _twiml(None)
    match = keyword_of(message.text)
    if match is None:
        return _twiml(None)
    action, keyword = match
    if action is Action.HELP:
        return _twiml(settings.SMS_HELP_REPLY)
    event = _write_once(request, message, action, keyword)
    return _twiml(reply_for_state(event.state))


def _read(request: HttpRequest) -> InboundMessage:
    """The message of a signed request; raises `Refused`."""
    try:
        too_large = int(request.META.get("CONTENT_LENGTH") or 0) > MAX_WEBHOOK_BYTES
    except ValueError:
        too_large = True
    if too_large:
        raise Refused(413, f"The request body is larger than {MAX_WEBHOOK_BYTES} bytes.")
    if request.content_type != FORM_CONTENT_TYPE:
        raise Refused(415, f"The request body must be {FORM_CONTENT_TYPE}.")
    try:
        params = request.POST
    except RequestDataTooBig as exc:
        raise Refused(413, f"The request body is larger than {MAX_WEBHOOK_BYTES} bytes.") from exc
    except TooManyFieldsSent as exc:
        raise Refused(400, "The request has too many fields.") from exc
    _verify_signature(request, params)

    sid, sender, to = (params.get(name, "").strip() for name in ("MessageSid", "From", "To"))
    for name, value in (("MessageSid", sid), ("From", sender), ("To", to)):
        if not value:
            raise Refused(400, f"{name} is required.")
    if not MESSAGE_SID.match(sid):
        raise Refused(400, "MessageSid is not a message id.")
    try:
        sender = normalize_phone(sender)
    except InvalidAddress as exc:
        raise Refused(400, "From is not a valid phone number.") from exc
    return InboundMessage(sid=sid, sender=sender, to=to, text=params.get("Body", ""))


def _verify_signature(request: HttpRequest, params: QueryDict) -> None:
    """Refuse a request the provider did not sign with our auth token. Without a token nothing
    is accepted: a signature made with an empty key proves nothing."""
    token = settings.TWILIO_AUTH_TOKEN
    if not token:
        logger.error("TWILIO_AUTH_TOKEN is not set: inbound SMS are refused.")
        raise Refused(403, "The SMS door is not configured.")
    url = settings.PUBLIC_BASE_URL + request.get_full_path()
    signature = request.headers.get(SIGNATURE_HEADER, "")
    if not RequestValidator(token).validate(url, params, signature):
        raise Refused(403, "The request is not signed by the messaging provider.")


def _write_once(
    request: HttpRequest, message: InboundMessage, action: Action, keyword: str
) -> ConsentEvent:
    """The event of the message's one ledger call: written now, or the one written when the
    provider delivered the message before (a retry is a no-op)."""
    earlier = sms_message_event(message.sid)
    if earlier is not None:
        return earlier
    context = dataclasses.replace(
        change_context(request, door=Door.SMS, actor=ACTOR),
        request_id=message.sid,
        note=f"SMS from {message.sender} to {programme_number(message.to)}.",
    )
    change = ledger_change(action, keyword=keyword, to=message.to, message_sid=message.sid)
    try:
        return consent_upsert(
            type=ConsentType.PHONE, address=message.sender, change=change, context=context
        ).event
    except IntegrityError:
        # A concurrent delivery of the same message wrote first (event_sms_message_once); this
        # call was rolled back whole.
        earlier = sms_message_event(message.sid)
        if earlier is None:
            raise
        return earlier


def _twiml(reply: str | None) -> HttpResponse:
    """The provider's reply format: `<Response/>`, or one `<Message>` with the reply."""
    response = MessagingResponse()
    if reply:
        response.message(reply)
    return HttpResponse(str(response), content_type="application/xml")
