"""The admin index's glance at the ledger: how many consents in each state."""

from django import template

from consents.models import ConsentState
from consents.selectors import consent_counts_by_state

register = template.Library()


@register.inclusion_tag("admin/consents/state_counts.html")
def consent_state_counts() -> dict:
    counts = consent_counts_by_state()
    return {"counts": [(state.label, counts.get(state.value, 0)) for state in ConsentState]}
