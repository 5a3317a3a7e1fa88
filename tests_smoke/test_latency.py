"""Client-side latency probe: the revision's latency percentiles, measured by the suite itself.

Judged at once, without waiting for Cloud Monitoring; Cloud Monitoring's view
comes from the metric checks.
"""

from __future__ import annotations

import statistics

from revgate.checklist import Latency
from revgate.judge import fail
from revgate.target import Target


def test_latency(target: Target, latency_check: Latency) -> None:
    check = latency_check
    timings_ms: list[float] = []
    bad: list[str] = []
    for path in check.paths:
        for _ in range(check.requests):
            probe = target.request("GET", path, auth=check.auth, check=check)
            if probe.error or probe.status is None or probe.status >= 400:
                bad.append(probe.describe())
                continue
            timings_ms.append(probe.elapsed * 1000)
    total = check.requests * len(check.paths)
    if bad:
        fail(f"{len(bad)} of {total} requests failed, first: {bad[0]}")
    if len(timings_ms) >= 2:
        cuts = statistics.quantiles(timings_ms, n=100, method="inclusive")
        seen = {"p50": cuts[49], "p95": cuts[94], "p99": cuts[98]}
    else:
        seen = dict.fromkeys(("p50", "p95", "p99"), timings_ms[0])
    limits = {"p50": check.p50_ms, "p95": check.p95_ms, "p99": check.p99_ms}
    over = [f"{name} {seen[name]:.1f} ms > {limit:g} ms" for name, limit in limits.items() if limit is not None and seen[name] > limit]
    figures = ", ".join(f"{name} {value:.1f} ms" for name, value in seen.items())
    if over:
        fail(f"latency over the limit on {target.base_url} {check.paths} ({total} requests): {'; '.join(over)} (seen {figures})")
