"""The consent API as the source platform's published JS SDK sees it: every method through the
SDK against gunicorn, every answer's fields checked against the SDK's `.d.ts` types
(tests/consent_api_sdk.mjs).

The SDK comes from the npm registry at the versions pinned in tests/package.json; `make test`
installs it into tests/node_modules when Node.js is present. Without Node.js this test is
skipped, unless CONSENT_SDK_TEST_REQUIRED=1 (set by CI), which makes it fail instead.
"""

import json
import os
import shutil
import subprocess

import pytest

from tests.servers import BASE_DIR, prepare_database, running_server

TESTS = BASE_DIR / "tests"
SDK_PACKAGE = TESTS / "node_modules" / "@wix" / "marketing_marketing-consent" / "package.json"
METHODS = {
    "bulkUpsertMarketingConsent",
    "createMarketingConsent",
    "deleteMarketingConsent",
    "getMarketingConsent",
    "getMarketingConsentByIdentifier",
    "queryMarketingConsent",
    "removeMarketingConsent",
    "updateMarketingConsent",
    "upsertMarketingConsent",
}


def missing_sdk() -> str | None:
    if shutil.which("node") is None:
        return "Node.js is not installed: the consent API's SDK test cannot run"
    if not SDK_PACKAGE.exists():
        return "The SDK is not installed: run `npm ci --prefix tests` (make test does)"
    return None


@pytest.fixture
def node() -> str:
    reason = missing_sdk()
    if reason and os.environ.get("CONSENT_SDK_TEST_REQUIRED") == "1":
        pytest.fail(reason)
    if reason:
        pytest.skip(reason)
    return shutil.which("node")


def test_every_method_through_the_platforms_sdk_gets_answers_of_its_types(node, tmp_path):
    environment, api_key = prepare_database(tmp_path)

    with running_server("gunicorn", environment, api_key, tmp_path / "gunicorn.log") as server:
        done = subprocess.run(
            [node, "consent_api_sdk.mjs", server.url, api_key],
            cwd=TESTS,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert set(report["calls"]) == METHODS
    assert report["problems"] == []
