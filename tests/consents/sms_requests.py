"""Inbound SMS webhooks as the provider sends them: form-encoded and signed with its own helper."""

from urllib.parse import urlencode
from xml.sax.saxutils import escape

from django.test import Client
from twilio.request_validator import RequestValidator

AUTH_TOKEN = "test-auth-token-0123456789abcdef"
BASE_URL = "https://consent.example.com"
PATH = "/sms/inbound"
FORM = "application/x-www-form-urlencoded"
SENDER = "+14155550188"
SHORTCODE = "32123"
XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'
EMPTY_REPLY = f"{XML_DECLARATION}<Response />"


def sid(n: int) -> str:
    """A message id in the provider's shape: SM and 32 hex digits."""
    return f"SM{n:032x}"


def message(text: str, *, n: int = 1, sender: str = SENDER, to: str = SHORTCODE) -> dict:
    """The parameters of an inbound message, as the provider posts them."""
    return {
        "ToCountry": "US",
        "SmsMessageSid": sid(n),
        "NumMedia": "0",
        "MessageSid": sid(n),
        "AccountSid": "AC" + "0" * 32,
        "From": sender,
        "To": to,
        "Body": text,
        "NumSegments": "1",
        "ApiVersion": "2010-04-01",
    }


def signature(params: dict, *, url: str = BASE_URL + PATH, token: str = AUTH_TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, params)


def post(
    params: dict,
    *,
    signed_with: str | None = None,
    path: str = PATH,
    client: Client | None = None,
):
    """POST a message signed for PUBLIC_BASE_URL + path (or with the signature given), by a
    client that enforces CSRF and carries no API key."""
    client = client or Client(enforce_csrf_checks=True)
    sent_signature = signature(params, url=BASE_URL + path) if signed_with is None else signed_with
    return client.post(
        path, urlencode(params), content_type=FORM, HTTP_X_TWILIO_SIGNATURE=sent_signature
    )


def twiml(reply: str) -> str:
    """The TwiML of one reply message."""
    return f"{XML_DECLARATION}<Response><Message>{escape(reply)}</Message></Response>"
