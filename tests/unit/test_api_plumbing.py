"""The callable plumbing's pure parts: callers and roles, validation with field paths, serialisation."""
from datetime import datetime, timezone

import pytest
from pydantic import Field

from offerlab.api.auth import caller_from_token, require_role
from offerlab.domain.actors import Caller, Role
from offerlab.api.callable import parse
from offerlab.api.holdouts import CreateHoldoutCohort
from offerlab.api.models import ApiModel, JsonObject, Name, dump
from offerlab.domain.errors import InvalidArgument, PermissionDenied, Unauthenticated


def test_no_token_is_unauthenticated():
    with pytest.raises(Unauthenticated):
        caller_from_token(None, None)


def test_roles_come_from_the_roles_claim_and_unknown_roles_are_ignored():
    caller = caller_from_token("u1", {"roles": ["analyst", "root", 7], "email": "A@X.com"})
    assert caller.roles == frozenset({Role.ANALYST}) and caller.email == "a@x.com"
    assert caller_from_token("u1", {"roles": "admin"}).roles == frozenset()  # a string is not a list


def test_admin_holds_every_role_and_others_only_their_own():
    admin = Caller("a", None, frozenset({Role.ADMIN}))
    analyst = Caller("b", None, frozenset({Role.ANALYST}))
    require_role(admin, [Role.EXPERIMENTER])
    with pytest.raises(PermissionDenied):
        require_role(analyst, [Role.EXPERIMENTER])
    require_role(Caller("c", None, frozenset()), [])  # any signed-in user


class Nested(ApiModel):
    name: Name
    limit: int = Field(ge=0)


class Outer(ApiModel):
    items: list[Nested] = Field(max_length=3)
    config: JsonObject = {}


def test_validation_lists_each_bad_field_path_in_wire_names():
    with pytest.raises(InvalidArgument) as err:
        parse(Outer, {"items": [{"name": "ok", "limit": 1}, {"name": "", "limit": -1}], "extraField": 1})
    paths = {f["path"] for f in err.value.details["fields"]}
    assert paths == {"items.1.name", "items.1.limit", "extraField"}


def test_validation_echoes_no_input():
    with pytest.raises(InvalidArgument) as err:
        parse(Outer, {"items": "SECRET-VALUE"})
    assert "SECRET-VALUE" not in repr(err.value.details)


@pytest.mark.parametrize("config", [
    {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": 1}}}}}}}},  # too deep
    {f"k{i}": i for i in range(51)},                             # too many keys
    {"s": "x" * 5000},                                           # string too long
    {"n": float("nan")},
])
def test_free_form_json_is_bounded(config):
    with pytest.raises(InvalidArgument):
        parse(Outer, {"items": [], "config": config})


def test_payload_must_be_an_object():
    with pytest.raises(InvalidArgument):
        parse(Outer, ["not", "an", "object"])


@pytest.mark.parametrize("pct, ok", [(10, True), (0.01, True), (50, True), (0, False), (50.01, False),
                                     (12.345, False), (-1, False), ("ten", False)])
def test_cohort_percentage_bounds_and_resolution(pct, ok):
    payload = {"name": "h", "percentage": pct}
    if ok:
        assert parse(CreateHoldoutCohort, payload).percentage == pct
    else:
        with pytest.raises(InvalidArgument) as err:
            parse(CreateHoldoutCohort, payload)
        assert [f["path"] for f in err.value.details["fields"]] == ["percentage"]


def test_dump_uses_rfc3339_and_aliases():
    when = datetime(2026, 1, 4, 12, 0, tzinfo=timezone.utc)
    assert dump({"at": when, "items": [Nested(name="a", limit=1)]}) == {
        "at": "2026-01-04T12:00:00Z", "items": [{"name": "a", "limit": 1}]}
