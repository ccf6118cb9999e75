"""The admin index's glance at the ledger: how many consents in each state."""

from django import template
from django.db.models import Count

from consents.models import ConsentState, MarketingConsent

register = template.Library()


@register.inclusion_tag("admin/consents/state_counts.html")
def consent_state_counts() -> dict:
    counts = dict(MarketingConsent.objects.values_list("state").annotate(Count("id")))
    return {"counts": [(state.label, counts.get(state.value, 0)) for state in ConsentState]}
