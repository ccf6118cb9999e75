"""Serializer instances get their own fields (cloned, not deep-copied): nothing a request
changes on one instance's fields reaches another instance."""

from consents.api.serializers import BulkUpsertRequestSerializer, MarketingConsentInputSerializer
from members.api.serializers import MarketingSubscriptionSerializer


def test_a_per_instance_error_message_edit_stays_in_its_instance():
    first = MarketingSubscriptionSerializer()
    first.fields["email"].fields["preference"].error_messages["invalid_choice"] = "changed"

    second = MarketingSubscriptionSerializer(data={"email": {"preference": "MAYBE"}})

    assert not second.is_valid()
    assert second.errors["email"]["preference"] == ["Invalid preference option sent for email."]


def test_each_channel_keeps_its_own_messages():
    serializer = MarketingSubscriptionSerializer(data={"email": {}, "sms": {}})

    email = serializer.fields["email"].fields["preference"].error_messages["required"]
    sms = serializer.fields["sms"].fields["preference"].error_messages["required"]

    assert email == "Preference for email is not sent in the request."
    assert sms == "Preference for sms is not sent in the request."


def test_fields_are_bound_to_their_own_instance():
    first, second = MarketingConsentInputSerializer(), MarketingConsentInputSerializer()

    for serializer in (first, second):
        for name, field in serializer.fields.items():
            assert field.parent is serializer
            assert field.field_name == name
    assert not set(map(id, first.fields.values())) & set(map(id, second.fields.values()))


def test_a_list_child_is_bound_to_its_own_list():
    first, second = BulkUpsertRequestSerializer(), BulkUpsertRequestSerializer()

    assert first.fields["info"].child is not second.fields["info"].child
    assert first.fields["info"].child.parent is first.fields["info"]
