"""Kubernetes quantities as the [revision] checks compare them (memory as bytes, CPU as cores)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from revgate.quantities import QuantityError, cpu_cores, format_bytes, memory_bytes, parse_quantity
from revgate.revision_images import parse_image


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("512Mi", 512 * 1024**2),
        ("2Gi", 2 * 1024**3),
        ("2048Mi", 2 * 1024**3),
        ("1G", 10**9),
        ("1.5Gi", 3 * 512 * 1024**2),
        ("128974848", 128974848),
        ("129e6", 129 * 10**6),
        ("123Ki", 123 * 1024),
    ],
)
def test_memory_compares_as_bytes(text: str, expected: int) -> None:
    assert memory_bytes(text) == expected


def test_binary_and_decimal_suffixes_differ() -> None:
    assert memory_bytes("1Gi") != memory_bytes("1G")
    assert memory_bytes("2Gi") == memory_bytes("2048Mi") == memory_bytes("2097152Ki")


@pytest.mark.parametrize(
    ("value", "cores"),
    [("2", Decimal(2)), (2, Decimal(2)), ("1000m", Decimal(1)), ("2000m", Decimal(2)), (0.5, Decimal("0.5")), ("500m", Decimal("0.5"))],
)
def test_cpu_compares_as_cores(value: str | int | float, cores: Decimal) -> None:
    assert cpu_cores(value) == cores


@pytest.mark.parametrize("text", ["2 gigs", "", "Gi", "2GB", "-1Gi", "1.2.3", "2gi", "0x10"])
def test_not_a_quantity(text: str) -> None:
    with pytest.raises(QuantityError):
        parse_quantity(text)


def test_fractional_bytes_and_zero_cpu_are_refused() -> None:
    with pytest.raises(QuantityError):
        memory_bytes("1500m")
    with pytest.raises(QuantityError):
        cpu_cores(0)
    with pytest.raises(QuantityError):
        cpu_cores(True)


def test_format_bytes() -> None:
    assert format_bytes(2 * 1024**3) == "2Gi"
    assert format_bytes(512 * 1024**2) == "512Mi"
    assert format_bytes(10**9) == "1000000000 bytes"


def test_image_references() -> None:
    digest = "sha256:" + "ab" * 32
    assert parse_image(f"europe-docker.pkg.dev/p/r/app@{digest}").digest == digest
    assert parse_image("europe-docker.pkg.dev/p/r/app:v1").tagged() == "europe-docker.pkg.dev/p/r/app:v1"
    assert parse_image("localhost:5000/app").tagged() == "localhost:5000/app:latest"
    for bad in ("app@sha256:short", "App:v1 ", "UPPER/app", "app:bad tag", ""):
        with pytest.raises(ValueError):
            parse_image(bad)
