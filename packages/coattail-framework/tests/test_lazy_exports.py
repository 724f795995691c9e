"""``plugins.lazy_exports``: a plugin package's names are imported on first use, unknown names still fail."""

from __future__ import annotations

import email.message

import pytest

from coattail_framework.plugins import lazy_exports


def test_names_come_from_their_module_on_first_use_and_others_raise_attribute_error() -> None:
    getattr_ = lazy_exports("email", {"Message": "message"})
    assert getattr_("Message") is email.message.Message
    with pytest.raises(AttributeError, match="module 'email' has no attribute 'Nope'"):
        getattr_("Nope")
