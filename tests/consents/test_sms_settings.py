"""The SMS door's settings, read from the environment as the server reads them."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
NAMES = ["TWILIO_AUTH_TOKEN", "SMS_PROGRAMME_NUMBERS", "SMS_STOP_KEYWORDS", "SMS_STOP_REPLY"]


def sms_settings(**env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SMS_", "TWILIO_"))}
    script = (
        "import json, django; django.setup(); from django.conf import settings; "
        f"print(json.dumps({{name: getattr(settings, name) for name in {NAMES!r}}}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={
            **clean,
            "DJANGO_SETTINGS_MODULE": "consentsite.settings",
            "DJANGO_DEBUG": "true",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_defaults_refuse_every_message_and_serve_the_default_shortcode():
    assert sms_settings(SMS_DEFAULT_SHORTCODE="55555") == {
        "TWILIO_AUTH_TOKEN": "",
        "SMS_PROGRAMME_NUMBERS": ["55555"],
        "SMS_STOP_KEYWORDS": ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"],
        "SMS_STOP_REPLY": "Consentsite: You are unsubscribed and will receive no more messages. "
        "Reply START to resubscribe.",
    }


def test_lists_are_comma_separated_and_the_brand_opens_the_default_replies():
    configured = sms_settings(
        TWILIO_AUTH_TOKEN="secret",
        SMS_PROGRAMME_NUMBERS="+14155550100,32123",
        SMS_STOP_KEYWORDS="STOP,ARRET",
        SMS_BRAND="Acme Rewards",
    )

    assert configured == {
        "TWILIO_AUTH_TOKEN": "secret",
        "SMS_PROGRAMME_NUMBERS": ["+14155550100", "32123"],
        "SMS_STOP_KEYWORDS": ["STOP", "ARRET"],
        "SMS_STOP_REPLY": "Acme Rewards: You are unsubscribed and will receive no more messages. "
        "Reply START to resubscribe.",
    }
