"""Kubernetes resource quantities, as Cloud Run's ``resources.limits`` hold them (``"512Mi"``, ``"1000m"``).

Cloud Run v2's ``ResourceRequirements.limits`` is a map whose values follow Kubernetes
(k8s.min.proto: "Only ``memory`` and ``cpu`` keys in the map are supported";
https://cloud.google.com/run/docs/reference/rest/v2/Container#ResourceRequirements). A quantity
is a decimal number and a suffix (https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/quantity/):
binary ``Ki Mi Gi Ti Pi Ei`` (powers of 1024), decimal ``m`` (1/1000), ``k M G T P E`` (powers
of 1000), or an exponent (``1e3``). Memory compares as bytes, CPU as cores, exactly (Decimal).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

__all__ = ["QuantityError", "parse_quantity", "memory_bytes", "cpu_cores", "format_bytes", "format_cores"]

_SUFFIXES = {
    "": Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(1000),
    "M": Decimal(1000) ** 2,
    "G": Decimal(1000) ** 3,
    "T": Decimal(1000) ** 4,
    "P": Decimal(1000) ** 5,
    "E": Decimal(1000) ** 6,
    "Ki": Decimal(1024),
    "Mi": Decimal(1024) ** 2,
    "Gi": Decimal(1024) ** 3,
    "Ti": Decimal(1024) ** 4,
    "Pi": Decimal(1024) ** 5,
    "Ei": Decimal(1024) ** 6,
}
_QUANTITY = re.compile(r"^(?P<number>[+]?(\d+(\.\d*)?|\.\d+))(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[mkMGTPE]|[eE][+-]?\d{1,3})?$")


class QuantityError(ValueError):
    """Not a Kubernetes quantity."""


def parse_quantity(text: str) -> Decimal:
    """``"2Gi"`` -> 2147483648, ``"1000m"`` -> 1, ``"1.5"`` -> 1.5, ``"1e3"`` -> 1000; QuantityError otherwise."""
    match = _QUANTITY.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise QuantityError(f"{text!r} is not a Kubernetes quantity (a number and a suffix like Mi, Gi, m, k, M, G)")
    try:
        number = Decimal(match["number"])
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
        raise QuantityError(f"{text!r} is not a number") from None
    suffix = match["suffix"] or ""
    if suffix[:1] in ("e", "E"):
        return number * Decimal(10) ** int(suffix[1:])
    return number * _SUFFIXES[suffix]


def memory_bytes(text: str) -> int:
    """Memory as bytes (``"512Mi"`` -> 536870912); a fraction of a byte is an error."""
    value = parse_quantity(text)
    if value != value.to_integral_value() or value <= 0:
        raise QuantityError(f"{text!r} is not a whole, positive number of bytes")
    return int(value)


def cpu_cores(value: str | int | float) -> Decimal:
    """CPU as cores: ``"2"``, ``2``, ``0.5``, ``"1000m"`` (TOML numbers accepted as the checklist gives them)."""
    if isinstance(value, bool):
        raise QuantityError(f"{value!r} is not a CPU quantity")
    if isinstance(value, (int, float)):
        cores = Decimal(str(value))
    else:
        cores = parse_quantity(value)
    if cores <= 0:
        raise QuantityError(f"{value!r}: a CPU limit is more than 0")
    return cores


def format_bytes(value: int) -> str:
    """``2147483648`` -> ``"2Gi"``; a size that is not a whole number of Ki stays in bytes."""
    for suffix in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
        unit = int(_SUFFIXES[suffix])
        if value >= unit and value % unit == 0:
            return f"{value // unit}{suffix}"
    return f"{value} bytes"


def format_cores(value: Decimal) -> str:
    """``Decimal("2")`` -> ``"2"``, ``Decimal("0.5")`` -> ``"0.5"``."""
    text = format(value.normalize(), "f")
    return text
