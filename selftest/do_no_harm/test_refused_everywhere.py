"""A request the serving revision refuses as well is the gate's problem, never the canary's.

A checklist that calls an endpoint public while every revision protects it, or an IAM-protected
service gated without its ID token (Cloud Run's front end answers 403 to every revision alike): the
canary answers 401 or 403, and so does the revision a rollback would restore. The check is NOT
VERIFIED, the traffic stays where it is, and no mark is written. A canary that alone refuses is
still a failure, and rolled back.
"""

from __future__ import annotations

CHECKLIST = """
[health]
ready_budget = 5

[[api]]
id = "stats"
path = "/api/memory/user/stats"
auth = false
"""


def test_a_request_every_revision_refuses_is_not_verified_and_moves_nothing(canary, gate, traffic, annotations, service, tmp_path):
    stable, candidate, url = canary(faults=())
    (tmp_path / "checklist.toml").write_text(CHECKLIST)
    result = gate(service, url, "--sections=smoke")
    assert result.run.returncode == 6, result.run
    assert "the serving revision refuses the same request as well" in result.output, result.output
    assert traffic(service).split == {stable: 90, candidate: 10}
    assert candidate not in annotations(service).get("revgate.dev/failed-revisions", "")


def test_a_canary_failing_on_its_own_is_still_rolled_back(canary, gate, traffic, service, tmp_path):
    stable, candidate, url = canary(faults=("health_500",))
    (tmp_path / "checklist.toml").write_text(CHECKLIST.replace('path = "/api/memory/user/stats"\nauth = false', 'path = "/api/hints"\nauth = false'))
    result = gate(service, url, "--sections=smoke")
    assert result.run.returncode == 1, result.run
    assert traffic(service).split == {stable: 100}


WS_CHECKLIST = """
[health]
ready_budget = 5

[[websocket]]
id = "session"
path = "/ws/{session}"
send = { type = "ping", id = 1 }
expect = { type = "pong", id = 1 }
timeout = 3
"""


def test_a_websocket_handshake_every_revision_refuses_is_not_verified(sb, gate, traffic, service, tmp_path):
    stable = sb.deploy(service, faults=["ws_reject"])
    candidate = sb.deploy(service, tag="canary", no_traffic=True, faults=["ws_reject"])
    sb.update_traffic(service, to_revisions={stable: 90, candidate: 10})
    (tmp_path / "checklist.toml").write_text(WS_CHECKLIST)
    result = gate(service, sb.tag_url(service, "canary"), "--sections=smoke")
    assert result.run.returncode == 6, result.run
    assert "refuses the same WebSocket handshake as well" in result.output, result.output
    assert traffic(service).split == {stable: 90, candidate: 10}


def test_a_websocket_refused_by_the_canary_alone_is_rolled_back(canary, gate, traffic, service, tmp_path):
    stable, candidate, url = canary(faults=("ws_reject",))
    (tmp_path / "checklist.toml").write_text(WS_CHECKLIST)
    result = gate(service, url, "--sections=smoke")
    assert result.run.returncode == 1, result.run
    assert "handshake refused with HTTP 403" in result.output
    assert traffic(service).split == {stable: 100}


def test_a_page_every_revision_refuses_is_not_verified(canary, gate, traffic, service, tmp_path):
    stable, candidate, url = canary(faults=())
    (tmp_path / "checklist.toml").write_text('[[page]]\nid = "stats"\npath = "/api/memory/user/stats"\nauth = false\n')
    result = gate(service, url, "tests_frontend")
    assert result.run.returncode == 6, result.run
    assert "the serving revision refuses the same request as well" in result.output, result.output
    assert traffic(service).split == {stable: 90, candidate: 10}
