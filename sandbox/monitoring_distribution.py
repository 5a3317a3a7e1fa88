"""Distribution values of the sandbox's Monitoring API: bucket options, accumulation and percentiles.

:class:`Buckets` holds the bucket options of a ``google.api.Distribution``
(exponential, linear or explicit) as finite boundaries; :class:`Distribution`
accumulates samples or merges other distributions (count, mean, sum of squared
deviation, bucket counts) and converts from and to the protobuf message.

Percentiles of a distribution are interpolated linearly inside the bucket that
holds the rank; percentiles of plain numbers (:func:`numeric_percentile`)
interpolate linearly between the closest ranks.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from google.api import distribution_pb2

from sandbox.monitoring_filter import InvalidQuery

__all__ = ["Buckets", "Distribution", "LATENCY_BUCKETS", "UTILIZATION_BUCKETS", "numeric_percentile"]


@dataclass(frozen=True)
class Buckets:
    """Bucket options of a distribution, kept as the finite boundaries.

    Bucket 0 is the underflow ``(-inf, b0)``, bucket ``i`` is ``[b(i-1), b(i))``,
    the last one the overflow ``[bN, +inf)``, as in ``google.api.Distribution``.
    """

    spec: tuple[Any, ...]
    bounds: tuple[float, ...]

    @classmethod
    def exponential(cls, *, num_finite_buckets: int, growth_factor: float, scale: float) -> Buckets:
        bounds = tuple(scale * growth_factor**i for i in range(num_finite_buckets + 1))
        return cls(("exponential", num_finite_buckets, growth_factor, scale), bounds)

    @classmethod
    def linear(cls, *, num_finite_buckets: int, width: float, offset: float) -> Buckets:
        bounds = tuple(offset + width * i for i in range(num_finite_buckets + 1))
        return cls(("linear", num_finite_buckets, width, offset), bounds)

    @classmethod
    def explicit(cls, bounds: Iterable[float]) -> Buckets:
        b = tuple(float(x) for x in bounds)
        return cls(("explicit", b), b)

    @classmethod
    def from_pb(cls, options: distribution_pb2.Distribution.BucketOptions) -> Buckets:
        which = options.WhichOneof("options")
        if which == "exponential_buckets":
            e = options.exponential_buckets
            if e.num_finite_buckets <= 0 or e.growth_factor <= 1 or e.scale <= 0:
                raise InvalidQuery(
                    "exponential bucket options need num_finite_buckets > 0, growth_factor > 1, scale > 0"
                )
            return cls.exponential(
                num_finite_buckets=e.num_finite_buckets, growth_factor=e.growth_factor, scale=e.scale
            )
        if which == "linear_buckets":
            ln = options.linear_buckets
            if ln.num_finite_buckets <= 0 or ln.width <= 0:
                raise InvalidQuery("linear bucket options need num_finite_buckets > 0 and width > 0")
            return cls.linear(num_finite_buckets=ln.num_finite_buckets, width=ln.width, offset=ln.offset)
        if which == "explicit_buckets":
            b = list(options.explicit_buckets.bounds)
            if not b or any(y <= x for x, y in zip(b, b[1:], strict=False)):
                raise InvalidQuery("explicit bucket bounds must be non-empty and strictly increasing")
            return cls.explicit(b)
        raise InvalidQuery("a distribution value needs bucket_options")

    @property
    def count(self) -> int:
        return len(self.bounds) + 1

    def index(self, value: float) -> int:
        return bisect.bisect_right(self.bounds, value)

    def edges(self, i: int) -> tuple[float, float]:
        """Lower and upper edge of bucket ``i`` (the open ends are clamped to a finite value)."""
        if i == 0:
            upper = self.bounds[0]
            return (min(0.0, upper), upper)
        if i >= len(self.bounds):
            return (self.bounds[-1], self.bounds[-1])
        return (self.bounds[i - 1], self.bounds[i])

    def fill_pb(self, options: distribution_pb2.Distribution.BucketOptions) -> None:
        kind = self.spec[0]
        if kind == "exponential":
            _, n, g, s = self.spec
            options.exponential_buckets.num_finite_buckets = n
            options.exponential_buckets.growth_factor = g
            options.exponential_buckets.scale = s
        elif kind == "linear":
            _, n, w, o = self.spec
            options.linear_buckets.num_finite_buckets = n
            options.linear_buckets.width = w
            options.linear_buckets.offset = o
        else:
            options.explicit_buckets.bounds.extend(self.bounds)


LATENCY_BUCKETS = Buckets.exponential(num_finite_buckets=100, growth_factor=1.4, scale=1.0)
UTILIZATION_BUCKETS = Buckets.linear(num_finite_buckets=100, width=0.01, offset=0.0)


class Distribution:
    """A mutable distribution accumulator (count, mean, sum of squared deviation, bucket counts)."""

    __slots__ = ("buckets", "count", "mean", "m2", "counts")

    def __init__(self, buckets: Buckets) -> None:
        self.buckets = buckets
        self.count = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.counts = [0] * buckets.count

    @classmethod
    def combined(cls, buckets: Buckets, values: Iterable[float | Distribution]) -> Distribution:
        """A new distribution over ``buckets`` holding every sample and distribution of ``values``."""
        acc = cls(buckets)
        for v in values:
            acc.absorb(v)
        return acc

    def add(self, x: float) -> None:
        self.count += 1
        d = x - self.mean
        self.mean += d / self.count
        self.m2 += d * (x - self.mean)
        self.counts[self.buckets.index(x)] += 1

    def merge(self, other: Distribution) -> None:
        if other.buckets != self.buckets:
            raise InvalidQuery("distributions with different bucket_options cannot be aggregated together")
        if other.count == 0:
            return
        n = self.count + other.count
        d = other.mean - self.mean
        self.m2 += other.m2 + d * d * self.count * other.count / n
        self.mean += d * other.count / n
        self.count = n
        for i, c in enumerate(other.counts):
            if c:
                self.counts[i] += c

    def absorb(self, value: float | Distribution) -> None:
        if isinstance(value, Distribution):
            self.merge(value)
        else:
            self.add(value)

    def percentile(self, p: float) -> float:
        """The ``p``-th percentile, interpolated linearly inside the bucket holding that rank."""
        if self.count == 0:
            return 0.0
        rank = p / 100.0 * self.count
        seen = 0
        for i, c in enumerate(self.counts):
            if c and seen + c >= rank:
                lo, hi = self.buckets.edges(i)
                return lo + (hi - lo) * max(0.0, rank - seen) / c
            seen += c
        return self.buckets.edges(self.buckets.count - 1)[0]

    @classmethod
    def from_pb(cls, d: distribution_pb2.Distribution) -> Distribution:
        buckets = Buckets.from_pb(d.bucket_options)
        counts = list(d.bucket_counts)
        if len(counts) > buckets.count:
            raise InvalidQuery(f"distribution has {len(counts)} bucket_counts for {buckets.count} buckets")
        if counts and sum(counts) != d.count:
            raise InvalidQuery(f"distribution count {d.count} differs from the sum of bucket_counts {sum(counts)}")
        out = cls(buckets)
        out.count = int(d.count)
        out.mean = d.mean
        out.m2 = d.sum_of_squared_deviation
        out.counts[: len(counts)] = counts
        return out

    def fill_pb(self, d: distribution_pb2.Distribution) -> None:
        d.count = self.count
        d.mean = self.mean
        d.sum_of_squared_deviation = self.m2
        self.buckets.fill_pb(d.bucket_options)
        last = len(self.counts)
        while last and not self.counts[last - 1]:
            last -= 1  # the API omits trailing empty buckets
        d.bucket_counts.extend(self.counts[:last])


def numeric_percentile(values: list[float], p: float) -> float:
    """The ``p``-th percentile of plain numbers, interpolated linearly between the closest ranks."""
    ordered = sorted(values)
    pos = p / 100.0 * (len(ordered) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)
