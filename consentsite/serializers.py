"""A DRF serializer whose fields are cloned, not deep-copied, for each instance.

DRF gives every serializer instance its own fields by `copy.deepcopy` of the declared ones, which
re-runs each field's `__init__` on deep copies of its arguments: most of the cost of building a
request's serializer. A clone here is a shallow copy of the declared field with its own copy of
everything a request may change: error messages (a serializer may edit them per instance),
validators, mutable defaults, and, recursively, a nested serializer's fields or a list's child,
bound to the clone. Nothing mutable is shared between instances, so between requests.
"""

import copy

from rest_framework import serializers
from rest_framework.utils.serializer_helpers import BindingDict

IMMUTABLE = (type(None), bool, int, float, str, bytes, tuple, frozenset)


def clone_field(field: serializers.Field) -> serializers.Field:
    clone = object.__new__(type(field))
    state = clone.__dict__
    state.update(field.__dict__)
    state["error_messages"] = dict(field.error_messages)
    if "_validators" in state:
        state["_validators"] = list(state["_validators"])
    for name in ("default", "initial"):
        value = state.get(name)
        if not isinstance(value, IMMUTABLE) and not callable(value):
            state[name] = copy.deepcopy(value)
    # Unbound, as declared: its new parent binds it (and derives these from its name) again.
    state.update(field_name=None, parent=None)
    state.pop("source_attrs", None)
    state["source"] = field._kwargs.get("source")
    state["label"] = field._kwargs.get("label")
    if "child" in state:
        state["child"] = clone_field(field.child)
        state["child"].bind(field_name="", parent=clone)
    if "fields" in state:  # a nested serializer whose fields were already built
        fields = BindingDict(clone)
        for name, nested in field.fields.items():
            fields[name] = clone_field(nested)
        state["fields"] = fields
    return clone


class Serializer(serializers.Serializer):
    """DRF's Serializer, its declared fields cloned per instance (see above)."""

    def get_fields(self) -> dict[str, serializers.Field]:
        return {name: clone_field(field) for name, field in self._declared_fields.items()}
