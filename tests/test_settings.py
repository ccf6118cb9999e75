"""Settings: refusing the development key, and a clean deploy check in production shape."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(args: list[str], **env: str) -> subprocess.CompletedProcess:
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PUBLIC_", "ERASURE_"))
    }
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "consentsite.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_debug_off_with_the_development_key_refuses_to_start():
    result = run(["-c", "import django; django.setup()"], DJANGO_DEBUG="false")

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set to a secret value when DJANGO_DEBUG is off." in (
        result.stderr
    )


def test_debug_off_without_an_erasure_hash_key_refuses_to_start():
    result = run(
        ["-c", "import django; django.setup()"],
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY="k3y-" + "x7Qp9Lm2Vb8Rt5Zw" * 4,
    )

    assert result.returncode != 0
    assert "ERASURE_HASH_KEY must be set to a secret value when DJANGO_DEBUG is off." in (
        result.stderr
    )


def test_production_settings_pass_the_deploy_check():
    result = run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY="k3y-" + "x7Qp9Lm2Vb8Rt5Zw" * 4,
        ERASURE_HASH_KEY="3r4s-" + "Hq8Wz2Nc6Kd4Tb9Y" * 4,
        PUBLIC_BASE_URL="https://consent.example.com",
        DJANGO_ALLOWED_HOSTS="consent.example.com",
    )

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def database_options(**env: str) -> str:
    script = "from django.conf import settings; print(settings.DATABASES['default']['OPTIONS'])"
    result = run(["-c", f"import django; django.setup(); {script}"], DJANGO_DEBUG="true", **env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_postgresql_binds_on_the_server_and_prepares_repeated_statements():
    url = "postgres://app@db.example.com:5432/consentsite"

    default = database_options(DATABASE_URL=url)
    behind_a_pooler = database_options(DATABASE_URL=url, DATABASE_PREPARE_THRESHOLD="none")

    bounded = "'connect_timeout': 3, 'options': '-c statement_timeout=10000'"
    assert default == f"{{'server_side_binding': True, 'prepare_threshold': 5, {bounded}}}"
    assert behind_a_pooler == (
        f"{{'server_side_binding': True, 'prepare_threshold': None, {bounded}}}"
    )


def test_postgresql_waits_are_bounded_by_settings():
    url = "postgres://app@db.example.com:5432/consentsite"

    options = database_options(
        DATABASE_URL=url, DATABASE_CONNECT_TIMEOUT="2", DATABASE_STATEMENT_TIMEOUT="2.5"
    )

    assert "'connect_timeout': 2, 'options': '-c statement_timeout=2500'" in options


def hsts(**env: str) -> str:
    script = (
        "from django.conf import settings; "
        "print(settings.SECURE_HSTS_INCLUDE_SUBDOMAINS, settings.SECURE_HSTS_PRELOAD)"
    )
    result = run(
        ["-c", f"import django; django.setup(); {script}"],
        DJANGO_DEBUG="true",
        PUBLIC_BASE_URL="https://consent.example.com",
        **env,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_hsts_preload_and_subdomains_are_opt_in_over_https():
    assert hsts() == "False False"
    assert hsts(DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS="true") == "True False"
    assert (
        hsts(DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS="true", DJANGO_SECURE_HSTS_PRELOAD="true")
        == "True True"
    )
