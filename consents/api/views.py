"""The consent API (docs/consent-api.md): nine methods onto the ledger, in the website platform's
style.

Each action: input serializer → ledger (door CONSENT_API, actor the API key's name) → output
serializer. Every success is a 200 with a JSON body, as the platform's own clients expect.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers, viewsets
from rest_framework.exceptions import ErrorDetail, NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from consents.api import schema
from consents.api import serializers as contract
from consents.api.query import run_query
from consents.api.schema import errors
from consents.exceptions import ConsentError, InvalidAddress, InvalidChange
from consents.ledger import (
    BatchItem,
    ChangeContext,
    LedgerResult,
    consent_create,
    consent_delete,
    consent_remove,
    consent_update,
    consent_upsert,
    consent_upsert_batch,
)
from consents.models import Door, MarketingConsent
from consents.selectors import address_consent, consent_by_id, shown_consent
from consentsite.api_errors import CONSENT, consent_validation_body, field_violations
from consentsite.apiviews import ContractApiMixin
from consentsite.change_context import change_context


def operation(**kwargs: Any) -> Any:
    return extend_schema(tags=["Consent API"], **kwargs)


SEED_EXAMPLE = {
    "details": {"type": "EMAIL", "email": "test@test.com"},
    "state": "PENDING",
    "lastConfirmationActivity": {
        "source": "IN_PERSON",
        "description": "Person filled a printed document.",
        "updated_date": "2023-05-01T00:00:00Z",
        "optInLevel": "DOUBLE_CONFIRMATION",
    },
}


def consent_body(consent: MarketingConsent, *, with_link: bool = True) -> dict[str, Any]:
    """A consent as this API answers it (`marketingConsent`), with its link (`link`) when the
    selector shows one."""
    shown = shown_consent(consent, with_link=with_link)
    body: dict[str, Any] = {
        "marketingConsent": contract.MarketingConsentSerializer(shown.consent).data
    }
    if shown.link is not None:
        body["link"] = shown.link
    return body


@contextmanager
def fields_under(prefix: str) -> Iterator[None]:
    """Report a ledger refusal as a field violation at its JSON path in this request."""
    try:
        yield
    except (InvalidChange, InvalidAddress) as exc:
        field = ".".join(part for part in (prefix, getattr(exc, "field", "")) if part)
        rule = getattr(exc, "rule", "FORMAT")
        raise ValidationError({field: [ErrorDetail(exc.message, code=rule)]}) from exc


def validated(serializer_class: type[serializers.Serializer], data: Any, prefix: str) -> Any:
    serializer = serializer_class(data=data)
    if not serializer.is_valid():
        raise ValidationError({prefix: serializer.errors} if prefix else serializer.errors)
    return serializer


def consent_input(
    data: Any, serializer_class: type[serializers.Serializer]
) -> tuple[serializers.Serializer, str]:
    """The consent of a body sent wrapped (`{"marketingConsent": {...}}`) or unwrapped, and the
    JSON path it sits at."""
    prefix = "marketingConsent" if contract.unwrapped(data) is not data else ""
    return validated(serializer_class, contract.unwrapped(data), prefix), prefix


class MarketingConsentViewSet(ContractApiMixin, viewsets.ViewSet):
    api_error_style = CONSENT
    read_actions = {"query"}

    def ledger_context(self) -> ChangeContext:
        request = self.request
        return change_context(request, door=Door.CONSENT_API, actor=request.auth.name)

    def get_consent(self, pk: str) -> MarketingConsent:
        consent = consent_by_id(pk)
        if consent is None:
            raise NotFound("Marketing consent not found.")
        return consent

    @operation(
        operation_id="upsertMarketingConsent",
        summary="Upsert a marketing consent",
        request=contract.WrappedConsentSerializer,
        responses={200: contract.ConsentWithLinkSerializer, **errors()},
        examples=[OpenApiExample("The source's example", value=SEED_EXAMPLE, request_only=True)],
        description="Create or update the consent of an email address or phone number. The "
        "body may be wrapped in `marketingConsent` or not; snake_case spellings are accepted.",
    )
    def upsert(self, request: Request) -> Response:
        serializer, prefix = consent_input(request.data, contract.MarketingConsentInputSerializer)
        data = serializer.validated_data
        with fields_under(prefix):
            result = consent_upsert(
                type=data["details"]["type"],
                address=data["details"]["address"],
                change=serializer.to_change(data),
                context=self.ledger_context(),
            )
        return Response(consent_body(result.consent))

    @operation(
        operation_id="createMarketingConsent",
        summary="Create a marketing consent",
        request=contract.CreateRequestSerializer,
        responses={200: contract.ConsentWithLinkSerializer, **errors(409)},
        description="Create a CONFIRMED consent. An address that has one already: 409.",
    )
    def create(self, request: Request) -> Response:
        serializer, prefix = consent_input(request.data, contract.CreateConsentInputSerializer)
        data = serializer.validated_data
        change = serializer.to_change(data)
        with fields_under(prefix):
            result = consent_create(
                type=data["details"]["type"],
                address=data["details"]["address"],
                confirmation=change.confirmation,
                extended_fields=change.extended_fields,
                context=self.ledger_context(),
            )
        return Response(consent_body(result.consent))

    @operation(
        operation_id="getMarketingConsent",
        summary="Get a marketing consent",
        responses={200: contract.ConsentResponseSerializer, **errors(404)},
    )
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(consent_body(self.get_consent(pk), with_link=False))

    @operation(
        operation_id="getMarketingConsentByIdentifier",
        summary="Get a marketing consent by identifier",
        parameters=[
            OpenApiParameter("type", str, enum=list(schema.CONSENT_TYPES), required=True),
            OpenApiParameter("email", schema.EMAIL, description="Required when `type` is EMAIL."),
            OpenApiParameter("phone", schema.PHONE, description="Required when `type` is PHONE."),
        ],
        responses={200: contract.GetByResponseSerializer, **errors()},
        description="The consent of an address and whether marketing may be sent to it now. "
        "An address without a consent gets only `communicationEligibility`.",
    )
    def get_by(self, request: Request) -> Response:
        details = validated(contract.GetByQuerySerializer, request.query_params, "").validated_data
        found = address_consent(details["type"], details["address"])
        answer: dict[str, Any] = {}
        if found.consent is not None:
            answer["marketingConsent"] = contract.MarketingConsentSerializer(found.consent).data
        eligibility = {"granted": found.eligibility.granted, "reason": found.eligibility.reason}
        if found.unsubscribe_url is not None:
            eligibility["revokeConfirmationLink"] = found.unsubscribe_url
        answer["communicationEligibility"] = eligibility
        return Response(answer)

    @operation(
        operation_id="updateMarketingConsent",
        summary="Update a marketing consent",
        request=contract.UpdateRequestSerializer,
        responses={200: contract.ConsentWithLinkSerializer, **errors(404, 409)},
        description="Update the parts named by `fieldMask.paths` (or `mask`, comma-separated; "
        "or, without a mask, every updatable part sent). With `revision`, only at that revision.",
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        consent = self.get_consent(pk)
        serializer = validated(contract.UpdateRequestSerializer, request.data, "")
        data = serializer.validated_data
        sent = data["marketingConsent"]
        if sent.get("id", consent.id) != consent.id:
            raise ValidationError(
                {"marketingConsent.id": [ErrorDetail("It is not the id in the URL.", "FORMAT")]}
            )
        with fields_under("marketingConsent"):
            result = consent_update(
                consent_id=consent.id,
                change=serializer.to_change(data),
                expected_revision=sent.get("revision"),
                context=self.ledger_context(),
            )
        return Response(consent_body(result.consent))

    @operation(
        operation_id="removeMarketingConsent",
        summary="Remove (revoke) a marketing consent",
        request=contract.RemoveRequestSerializer,
        responses={200: contract.ConsentResponseSerializer, **errors()},
        description="Revoke the consent of an address (the record is kept). An address without "
        "one is recorded as REVOKED, so an older opt-in arriving later cannot subscribe it.",
    )
    def remove(self, request: Request) -> Response:
        data = validated(contract.RemoveRequestSerializer, request.data, "").validated_data
        revoke = contract.RevokeActivitySerializer().to_activity(data["lastRevokeActivity"])
        with fields_under(""):
            result = consent_remove(
                type=data["details"]["type"],
                address=data["details"]["address"],
                revoke=revoke,
                context=self.ledger_context(),
            )
        return Response(consent_body(result.consent))

    @operation(
        operation_id="deleteMarketingConsent",
        summary="Delete a marketing consent",
        responses={200: contract.EmptySerializer, **errors(404)},
        description="Delete the consent record. Its events, and a DELETED one, stay as proof.",
    )
    def destroy(self, request: Request, pk: str) -> Response:
        consent = self.get_consent(pk)
        consent_delete(consent_id=consent.id, context=self.ledger_context())
        return Response({})

    @operation(
        operation_id="queryMarketingConsent",
        summary="Query marketing consents",
        request=contract.QueryRequestSerializer,
        responses={200: contract.QueryResponseSerializer, **errors()},
        examples=[
            OpenApiExample(
                "Confirmed email consents by creation day, last updated first",
                value={
                    "query": {
                        "filter": {"state": "CONFIRMED", "details.email": {"$exists": True}},
                        "sort": [
                            {"fieldName": "createdDate", "order": "ASC"},
                            {"fieldName": "updatedDate", "order": "DESC"},
                        ],
                        "cursorPaging": {"limit": 50},
                    }
                },
                request_only=True,
            )
        ],
        description="Filter, sort (by one field or both, each with its own order) and page "
        "consents. A follow-up page sends only `cursorPaging: {limit, cursor}`.",
    )
    def query(self, request: Request) -> Response:
        page = run_query(request.data)
        serializer = contract.MarketingConsentSerializer
        return Response(
            {
                "marketingConsent": [serializer(consent).data for consent in page.consents],
                "pagingMetadata": {
                    "count": len(page.consents),
                    "cursors": {"next": page.next_cursor, "prev": page.prev_cursor},
                    "hasNext": page.has_next,
                },
            }
        )

    @operation(
        operation_id="bulkUpsertMarketingConsent",
        summary="Bulk upsert marketing consents",
        request=contract.BulkUpsertRequestSerializer,
        responses={200: contract.BulkUpsertResponseSerializer, **errors()},
        description=f"Upsert up to {contract.MAX_BULK_ITEMS} consents. Each item succeeds or "
        "fails on its own; results come in request order with their `originalIndex`.",
    )
    def bulk_upsert(self, request: Request) -> Response:
        data = validated(contract.BulkUpsertRequestSerializer, request.data, "").validated_data
        results: list[dict[str, Any] | None] = [None] * len(data["info"])
        items, positions = [], []
        for index, item in enumerate(data["info"]):
            serializer = contract.MarketingConsentInputSerializer(data=contract.unwrapped(item))
            if not serializer.is_valid():
                results[index] = bulk_failure(index, field_violations(serializer.errors))
                continue
            valid = serializer.validated_data
            change = serializer.to_change(valid)
            items.append(BatchItem(valid["details"]["type"], valid["details"]["address"], change))
            positions.append(index)
        outcomes = consent_upsert_batch(items=items, context=self.ledger_context())
        for index, outcome in zip(positions, outcomes, strict=True):
            results[index] = bulk_result(index, outcome, with_entity=data["returnEntity"])
        failures = sum("error" in result for result in results)
        return Response(
            {
                "results": results,
                "metadata": {
                    "totalSuccess": len(results) - failures,
                    "totalFailure": failures,
                },
            }
        )


def bulk_result(
    index: int, outcome: LedgerResult | ConsentError, *, with_entity: bool
) -> dict[str, Any]:
    if isinstance(outcome, ConsentError):
        violation = {
            "field": getattr(outcome, "field", "details"),
            "description": outcome.message,
            "violatedRule": getattr(outcome, "rule", "FORMAT"),
        }
        return bulk_failure(index, [violation])
    body = consent_body(outcome.consent) if with_entity else {}
    return {"originalIndex": index, **body}


def bulk_failure(index: int, violations: list[dict[str, str]]) -> dict[str, Any]:
    """A failed item: the platform's clients read `error` as a string (each field's path and
    message, as in the message of a 400)."""
    return {"originalIndex": index, "error": consent_validation_body(violations)["message"]}
