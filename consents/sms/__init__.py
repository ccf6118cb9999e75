"""The SMS door: keyword replies to our messages (STOP, START, HELP) from the messaging provider.

`keywords` says what a message asks of the ledger; `views` is the provider's signed webhook.
"""
