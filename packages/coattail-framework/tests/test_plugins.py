"""Plugin declarations: an ``AlertType`` refuses a view the API could not serve; tiers select modules."""

from __future__ import annotations

import pytest

from coattail_framework.plugins import AlertType, AlertView, AlertViewKind, DetailField, DetectorInfo, select_modules

MARKOUT_DETAILS = (
    DetailField("exchange", "string", nullable=False),
    DetailField("side", "string", nullable=False),
    DetailField("horizon_seconds", "integer", nullable=False),
    DetailField("cohort_t", "number"),
)


def test_a_latest_per_key_view_names_declared_details_keys() -> None:
    view = AlertView(path="alpha", kind="latest_per_key", key=("exchange", "side", "horizon_seconds"))

    markout = AlertType("whale_markout", details=MARKOUT_DETAILS, view=view)

    assert markout.view == view


def test_a_latest_per_key_view_without_a_key_is_refused() -> None:
    with pytest.raises(
        ValueError, match=r"'whale_markout': a view has key fields exactly when its kind is latest_per_key"
    ):
        AlertType("whale_markout", details=MARKOUT_DETAILS, view=AlertView(path="alpha", kind="latest_per_key"))


@pytest.mark.parametrize("kind", ["listing", "latest_per_pair"])
def test_a_key_on_another_kind_of_view_is_refused(kind: AlertViewKind) -> None:
    view = AlertView(path="alpha", kind=kind, key=("exchange",))

    with pytest.raises(ValueError, match="a view has key fields exactly when its kind is latest_per_key"):
        AlertType("whale_markout", details=MARKOUT_DETAILS, view=view)


def test_a_key_naming_an_undeclared_details_key_is_refused() -> None:
    view = AlertView(path="alpha", kind="latest_per_key", key=("exchange", "notional_bucket", "horizon"))

    with pytest.raises(ValueError, match=r"view key \['notional_bucket', 'horizon'\] names undeclared details keys"):
        AlertType("whale_markout", details=MARKOUT_DETAILS, view=view)


def _info(name: str, module_id: str, tier: str) -> DetectorInfo:
    return DetectorInfo(module_id, name, tier, (AlertType(name.replace("-", "_"), details=()),))  # type: ignore[arg-type]


SMALL, MEDIUM, LARGE = (
    _info("whale", "MOD-002", "small"),
    _info("flow", "MOD-004", "medium"),
    _info("alpha", "MOD-008", "large"),
)


@pytest.mark.parametrize(
    ("tier", "disabled", "modules", "expected"),
    [
        ("small", (), {}, ["whale"]),
        ("medium", (), {}, ["whale", "flow"]),
        ("large", (), {}, ["whale", "flow", "alpha"]),
        ("small", (), {"alpha": {"enabled": True}}, ["whale", "alpha"]),  # one module switched on alone
        ("small", (), {"alpha": {"min_usd": 5}}, ["whale"]),  # settings alone do not switch it on
        ("large", (), {"flow": {"enabled": False}}, ["whale", "alpha"]),
        ("small", ("alpha",), {"alpha": {"enabled": True}}, ["whale"]),  # disabled_modules wins
    ],
)
def test_modules_are_selected_by_tier_or_switched_on_alone(
    tier: str, disabled: tuple[str, ...], modules: dict[str, dict[str, object]], expected: list[str]
) -> None:
    assert select_modules([LARGE, MEDIUM, SMALL], tier, disabled, modules) == expected
