"""Errors of the member domain. The member API renders them in its own error contract."""


class CorrelationIdInUse(Exception):
    """A session's correlation id is still bound to another member."""


class AmbiguousIdentifier(Exception):
    """An identifier that names more than one member (an email address or a phone number that
    members share)."""
