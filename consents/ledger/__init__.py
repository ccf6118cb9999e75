"""The consent ledger: the only code that changes a consent.

Every door (member API, consent API, manage-consent links, admin, commands, SMS) calls one of the
`consent_<verb>` functions with a `ChangeContext`. Each call validates the change against the rules
in docs/design.md, writes the new state and exactly one `ConsentEvent` in the same transaction, and
returns a `LedgerResult`. A refused call raises a `ConsentError` and changes nothing.

The modules depend one way: `changes` (what a write asks for) → `rules` (what it does to a
consent, in memory) → the paths that write: `postgres` (the rules as SQL), `redaction`,
`locking` (one consent, row locks), `batch` (many consents) and `sessions` (batches merged in
several database sessions at once) → this package's face.
"""

from consents.dates import to_millisecond
from consents.ledger.batch import (
    ALREADY_REVOKED,
    PendingConsent,
    PreparedBatch,
    consent_expire_pending,
    consent_revoke_addresses,
    consent_revoke_many,
    consent_upsert_batch,
    consent_upsert_many,
    prepare_batch,
    stale_pending,
)
from consents.ledger.changes import (
    MAX_CLOCK_SKEW,
    STATES_NEEDING_CONFIRMATION,
    BatchItem,
    ChangeContext,
    ConfirmationActivity,
    ConsentChange,
    LedgerResult,
    Outcome,
    RevokeActivity,
    changes_recorded,
    unstorable_json_fault,
)
from consents.ledger.locking import (
    consent_add,
    consent_confirm_by_link,
    consent_create,
    consent_delete,
    consent_erase,
    consent_erase_all,
    consent_remove,
    consent_renormalize,
    consent_revoke_by_link,
    consent_update,
    consent_upsert,
)
from consents.ledger.redaction import evidence_redact
from consents.ledger.rules import (
    Eligibility,
    check_confirmation_link,
    communication_eligibility,
    consent_as_recorded,
)
from consents.ledger.sessions import upsert_batches

__all__ = [
    "ALREADY_REVOKED",
    "MAX_CLOCK_SKEW",
    "STATES_NEEDING_CONFIRMATION",
    "BatchItem",
    "ChangeContext",
    "ConfirmationActivity",
    "ConsentChange",
    "Eligibility",
    "LedgerResult",
    "Outcome",
    "PendingConsent",
    "PreparedBatch",
    "RevokeActivity",
    "changes_recorded",
    "check_confirmation_link",
    "communication_eligibility",
    "consent_add",
    "consent_as_recorded",
    "consent_confirm_by_link",
    "consent_create",
    "consent_delete",
    "consent_erase",
    "consent_erase_all",
    "consent_expire_pending",
    "consent_remove",
    "consent_renormalize",
    "consent_revoke_addresses",
    "consent_revoke_by_link",
    "consent_revoke_many",
    "consent_update",
    "consent_upsert",
    "consent_upsert_batch",
    "consent_upsert_many",
    "evidence_redact",
    "prepare_batch",
    "stale_pending",
    "to_millisecond",
    "unstorable_json_fault",
    "upsert_batches",
]
