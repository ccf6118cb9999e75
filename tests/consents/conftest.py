from typing import Any

import pytest

API = "/marketing-consent/v1"
SEED_BODY = {
    "details": {"type": "EMAIL", "email": "test@test.com"},
    "state": "PENDING",
    "lastConfirmationActivity": {
        "source": "IN_PERSON",
        "description": "Person filled a printed document.",
        "updated_date": "2023-05-01T00:00:00Z",
        "optInLevel": "DOUBLE_CONFIRMATION",
    },
}


def confirmed(email: str, date: str = "2024-01-01T00:00:00Z", **extra: Any) -> dict[str, Any]:
    return {
        "details": {"type": "EMAIL", "email": email},
        "state": "CONFIRMED",
        "lastConfirmationActivity": {
            "source": "FORM",
            "updatedDate": date,
            "optInLevel": "SINGLE_CONFIRMATION",
        },
        **extra,
    }


def revoked(email: str, date: str = "2024-01-01T00:00:00Z") -> dict[str, Any]:
    return {
        "details": {"type": "EMAIL", "email": email},
        "state": "REVOKED",
        "lastRevokeActivity": {"source": "FORM", "updatedDate": date},
    }


def violation(field: str, description: str, rule: str) -> dict[str, Any]:
    return {
        "message": f"{field}: {description}",
        "details": {
            "validationError": {
                "fieldViolations": [
                    {"field": field, "description": description, "violatedRule": rule}
                ]
            }
        },
    }


def application_error(message: str, code: str) -> dict[str, Any]:
    return {
        "message": message,
        "details": {"applicationError": {"code": code, "description": message}},
    }


@pytest.fixture
def upsert(api_client):
    def send(body: Any) -> Any:
        return api_client.post(f"{API}/marketing-consent/upsert", body, format="json")

    return send
