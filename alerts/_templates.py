"""Annotation templates in three dialects from one source text.

A rule's summary and description use ``{name}`` / ``{name|format}`` placeholders (see
``_rules``). They become Go templates for Prometheus (``$labels``, ``$value`` and the
``query`` function for evidence) and for Grafana (``$labels``, ``$values``), and are
filled in directly by the built-in evaluator. The number formats reproduce Prometheus'
``humanize``, ``humanizePercentage`` and ``humanizeDuration`` exactly, so an alert reads
the same whichever system raised it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

from infermeter.alerts._rules import AlertRule, placeholders, substitute

__all__ = [
    "format_number",
    "grafana_template",
    "humanize",
    "humanize_duration",
    "humanize_percentage",
    "prometheus_template",
    "python_text",
]

_SMALL = ("m", "u", "n", "p", "f", "a", "z", "y")
_LARGE = ("k", "M", "G", "T", "P", "E", "Z", "Y")


def _g4(value: float) -> str:
    return f"{value:.4g}"


def humanize(value: float) -> str:
    """Prometheus' ``humanize``: 1234 -> 1.234k, 0.0123 -> 12.3m."""
    if value == 0 or math.isnan(value) or math.isinf(value):
        return _g4(value)
    prefix = ""
    if abs(value) >= 1:
        for p in _LARGE:
            if abs(value) < 1000:
                break
            prefix, value = p, value / 1000
        return _g4(value) + prefix
    for p in _SMALL:
        if abs(value) >= 1:
            break
        prefix, value = p, value * 1000
    return _g4(value) + prefix


def humanize_percentage(value: float) -> str:
    """Prometheus' ``humanizePercentage``: 0.2534 -> 25.34%."""
    return _g4(value * 100) + "%"


def humanize_duration(value: float) -> str:
    """Prometheus' ``humanizeDuration``: 3725 -> 1h 2m 5s, 1.5 -> 1.5s, 0.25 -> 250ms."""
    if math.isnan(value) or math.isinf(value):
        return _g4(value)
    if value == 0:
        return _g4(value) + "s"
    if abs(value) >= 1:
        return _whole_duration(value)
    prefix = ""
    for p in _SMALL:
        if abs(value) >= 1:
            break
        prefix, value = p, value * 1000
    return f"{_g4(value)}{prefix}s"


def _whole_duration(value: float) -> str:
    sign = "-" if value < 0 else ""
    value = abs(value)
    whole = int(value)
    seconds, minutes = whole % 60, (whole // 60) % 60
    hours, days = (whole // 3600) % 24, whole // 86400
    if days:
        return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
    if hours:
        return f"{sign}{hours}h {minutes}m {seconds}s"
    if minutes:
        return f"{sign}{minutes}m {seconds}s"
    return f"{sign}{_g4(value)}s"


def _usd(value: float) -> str:
    return f"${value:.2f}" if value >= 1 else f"${_g4(value)}"


_PYTHON_FORMATS: dict[str, Callable[[float], str]] = {
    "pct": humanize_percentage,
    "s": humanize_duration,
    "usd": _usd,
    "num": _g4,
    "": _g4,
}


def format_number(value: float | None, fmt: str) -> str:
    return "n/a" if value is None else _PYTHON_FORMATS[fmt](value)


def _go_format(variable: str, fmt: str) -> str:
    """A Go-template fragment printing ``variable`` (``$value``, ``$v``) in ``fmt``."""
    if fmt == "pct":
        return f"{{{{ humanizePercentage {variable} }}}}"
    if fmt == "s":
        return f"{{{{ humanizeDuration {variable} }}}}"
    if fmt == "usd":
        return (
            f'${{{{ if ge {variable} 1.0 }}}}{{{{ printf "%.2f" {variable} }}}}'
            f'{{{{ else }}}}{{{{ printf "%.4g" {variable} }}}}{{{{ end }}}}'
        )
    return f'{{{{ printf "%.4g" {variable} }}}}'


def prometheus_template(
    rule: AlertRule, text: str, evidence_query: Callable[[str], tuple[str, list[str]]]
) -> str:
    """``text`` as a Prometheus annotation template. ``evidence_query(name)`` returns a
    printf format of the evidence's PromQL and the label names filling its ``%q``s."""
    out = text
    for whole, name, fmt in placeholders(text):
        if name == "value":
            fragment = _go_format("$value", fmt)
        elif name in rule.evidence:
            query, labels = evidence_query(name)
            arguments = " ".join(f"$labels.{label}" for label in labels)
            fragment = (
                f"{{{{ with query (printf `{query}` {arguments}) }}}}"
                f"{{{{ $v := . | first | value }}}}{_go_format('$v', fmt)}"
                f"{{{{ else }}}}n/a{{{{ end }}}}"
            )
        else:
            fragment = f"{{{{ $labels.{name} }}}}"
        out = out.replace(whole, fragment, 1)
    return out


def grafana_template(rule: AlertRule, text: str, refs: Mapping[str, str]) -> str:
    """``text`` as a Grafana annotation template; ``refs`` maps ``value`` and evidence
    names to the refId of the reduce expression holding their number."""
    out = text
    for whole, name, fmt in placeholders(text):
        if name == "value" or name in rule.evidence:
            fragment = (
                f"{{{{ with $values.{refs[name]} }}}}{{{{ $v := .Value }}}}"
                f"{_go_format('$v', fmt)}{{{{ else }}}}n/a{{{{ end }}}}"
            )
        else:
            fragment = f"{{{{ $labels.{name} }}}}"
        out = out.replace(whole, fragment, 1)
    return out


def python_text(text: str, labels: Mapping[str, str], numbers: Mapping[str, float | None]) -> str:
    """``text`` filled in, in one pass: labels verbatim, numbers (value, evidence)
    formatted."""
    return substitute(
        text,
        lambda name, fmt: (
            format_number(numbers.get(name), fmt) if name in numbers else labels.get(name, "")
        ),
    )
