"""Consent change events: the ledger's event table read as an outbox and delivered, signed per
the Standard Webhooks spec, to each endpoint in ledger order by Celery workers."""
