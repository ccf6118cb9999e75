"""factory-boy factories for every model."""

from datetime import timedelta

import factory
from django.utils import timezone

from consents.models import (
    ClientApiKey,
    ConsentEvent,
    ConsentState,
    ConsentType,
    Door,
    EventKind,
    IdempotencyRecord,
    MarketingConsent,
)
from members.models import Channel, Member, MemberSession


class MemberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Member

    loyalty_id = factory.Sequence(lambda n: f"LOY-{n:05d}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.Sequence(lambda n: f"member{n}@example.com")
    phone = factory.Sequence(lambda n: f"+1415555{n % 10000:04d}")


class MemberSessionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MemberSession

    correlation_id = factory.Sequence(lambda n: f"corr-{n}")
    member = factory.SubFactory(MemberFactory)
    api_key = factory.SubFactory("tests.factories.ClientApiKeyFactory")
    channel = Channel.WEBSITE
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=1))


class MarketingConsentFactory(factory.django.DjangoModelFactory):
    """A stored consent row, for tests that need one in place (writes under test use the ledger)."""

    class Meta:
        model = MarketingConsent

    type = ConsentType.EMAIL
    address = factory.Sequence(lambda n: f"person{n}@example.com")
    state = ConsentState.CONFIRMED
    confirmation_source = "FORM"
    confirmation_opt_in_level = "SINGLE_CONFIRMATION"
    confirmation_date = factory.LazyFunction(timezone.now)


class ConsentEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ConsentEvent

    consent = factory.SubFactory(MarketingConsentFactory)
    type = factory.SelfAttribute("consent.type")
    address = factory.SelfAttribute("consent.address")
    kind = EventKind.CREATED
    revision = 1
    state = factory.SelfAttribute("consent.state")
    door = Door.CONSENT_API
    actor = "crm-sync"


class ClientApiKeyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ClientApiKey

    name = factory.Sequence(lambda n: f"client-{n}")

    @classmethod
    def _create(cls, model_class, *args, **kwargs) -> ClientApiKey:
        # The model stores only the key's hash: keep the clear text on the instance for tests.
        api_key, clear_key = model_class.objects.create_key(**kwargs)
        api_key.clear_key = clear_key
        return api_key


class IdempotencyRecordFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = IdempotencyRecord

    api_key_id = factory.LazyFunction(lambda: ClientApiKeyFactory().pk)
    key = factory.Sequence(lambda n: f"idem-{n}")
    fingerprint = "0" * 64
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=24))
