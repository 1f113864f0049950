"""Invariants every set of recommendations keeps, checked over everything a suite produces."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from infermeter.analytics.economics import Decisions

__all__ = ["check_decisions"]

# The runtime / warm-capacity advice: one decision per endpoint.
_DECISION_KINDS: Final = frozenset(
    {"add_warm_capacity", "move_to_containers", "move_to_serverless"}
)


def check_decisions(decisions: Decisions) -> None:
    """Raise ``AssertionError`` when ``decisions`` break a money invariant: a negative cost
    anywhere, more than one runtime / warm-capacity recommendation for an endpoint, a set
    for one endpoint whose combined monthly effect is a loss while one claims a saving, or
    a change that is not the cheapest plan meeting the SLO."""
    by_endpoint: dict[str | None, list[float]] = {}
    for rec in decisions.recommendations:
        for key, value in rec.evidence.items():
            if key.endswith("_monthly_usd") and isinstance(value, float) and value < 0:
                raise AssertionError(f"{rec.title}: negative {key} {value}")
        if rec.kind in _DECISION_KINDS:
            by_endpoint.setdefault(rec.endpoint, []).append(rec.monthly_cost_change_usd or 0.0)
    for endpoint, changes in by_endpoint.items():
        if len(changes) > 1:
            raise AssertionError(f"{endpoint}: {len(changes)} runtime decisions")
        if any(c < 0 for c in changes) and sum(changes) > 0:
            raise AssertionError(f"{endpoint}: claims a saving, loses {sum(changes):.2f}/month")
    for decision in decisions.endpoints:
        stay = decision.plans[0]
        for plan in decision.plans:
            if plan.monthly_cost_usd < 0:
                raise AssertionError(
                    f"{decision.endpoint}: {plan.kind} costs {plan.monthly_cost_usd}"
                )
        chosen = decision.chosen
        if chosen.monthly_cost_change_usd != round(
            chosen.monthly_cost_usd - stay.monthly_cost_usd, 2
        ):
            raise AssertionError(f"{decision.endpoint}: change is not cost minus today's cost")
        meeting = [p.monthly_cost_usd for p in decision.plans if p.meets_slo]
        if (
            meeting
            and chosen.kind != "stay"
            and (not chosen.meets_slo or chosen.monthly_cost_usd != min(meeting))
        ):
            raise AssertionError(
                f"{decision.endpoint}: {chosen.kind} is not the cheapest plan meeting the SLO"
            )
