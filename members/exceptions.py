"""Errors of the member domain. The member API renders them in its own error contract."""


class CorrelationIdInUse(Exception):
    """A session's correlation id is still bound to another member."""
