"""Domain errors raised by the ledger and address normalisation.

Each door turns them into its own contract body (see consentsite/api_errors.py); the ledger never
knows which door called it.
"""

from uuid import UUID


class ConsentError(Exception):
    """Base class: a request the ledger refuses. Nothing was changed."""

    code = "CONSENT_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidAddress(ConsentError):
    """An email address or phone number that cannot be normalised."""

    code = "INVALID_ADDRESS"


class InvalidChange(ConsentError):
    """A change the rules refuse: a missing required part or a value outside its enum.

    `field` names the part in the consent API's spelling (`lastConfirmationActivity`,
    `state`, `lastRevokeActivity.source`), so each door can point at it in its own words.
    """

    code = "INVALID_CHANGE"

    def __init__(self, message: str, *, field: str, rule: str = "REQUIRED_FIELD") -> None:
        super().__init__(message)
        self.field = field
        self.rule = rule


class ConsentNotFound(ConsentError):
    code = "NOT_FOUND"


class ConsentAlreadyExists(ConsentError):
    """A create for an address that has a consent already; `consent_id` names that consent."""

    code = "ALREADY_EXISTS"

    def __init__(self, message: str, *, consent_id: UUID | None = None) -> None:
        super().__init__(message)
        self.consent_id = consent_id


class RevisionMismatch(ConsentError):
    code = "REVISION_MISMATCH"


class StaleLink(ConsentError):
    """A confirmation link issued before a newer opt-out: confirming it would undo that opt-out."""

    code = "STALE_LINK"


class InvalidLink(ConsentError):
    """A manage-consent token that is malformed, tampered with or for another purpose."""

    code = "INVALID_LINK"


class ExpiredLink(InvalidLink):
    """A confirmation token older than CONFIRMATION_LINK_MAX_AGE."""

    code = "EXPIRED_LINK"
