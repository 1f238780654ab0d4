"""Response validation, paging and retry decisions of the randomuser client (pure logic)."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field

import pytest

from include.randomuser.client import (
    RandomUserClient,
    RandomUserError,
    RetryPolicy,
    TransientResponse,
    page_plan,
    validate_response,
)


def _body(n: int = 2, version: str = "1.4", info_results: int | None = None) -> bytes:
    results = [{"login": {"uuid": f"00000000-0000-4000-8000-00000000000{i}"}} for i in range(n)]
    info = {"seed": "s", "results": n if info_results is None else info_results, "page": 1,
            "version": version}
    return json.dumps({"results": results, "info": info}).encode()


JSON = {"Content-Type": "application/json"}


def test_valid_response_parses():
    assert len(validate_response(200, JSON, _body(2), 2)["results"]) == 2


@pytest.mark.parametrize(("status", "headers", "body", "requested", "kind", "text"), [
    (429, {"Retry-After": "7"}, b'{"error": "Whoa, ease up"}', 2, TransientResponse, "HTTP 429"),
    (500, {}, b"Internal Server Error", 2, TransientResponse, "HTTP 500"),
    (502, {"Content-Type": "text/html"}, b"<html>cloudflare</html>", 2, TransientResponse,
     "text/html"),
    (404, {}, b"Not Found", 2, RandomUserError, "refused"),
    (200, JSON, b'{"results": [', 2, TransientResponse, "not JSON"),
    (200, JSON, _body(0, info_results=1), 1, TransientResponse, "empty 'results'"),
    (200, JSON, _body(1), 2, RandomUserError, "asked for 2 users, got 1"),
    (200, JSON, _body(2, info_results=3), 2, RandomUserError, "info.results=3"),
    (200, JSON, _body(2, version="1.3"), 2, RandomUserError, "version 1.4"),
    (200, JSON, b'{"results": []}', 1, RandomUserError, "'info'"),
    (200, JSON, b'{"error": "Uh oh, something has gone wrong"}', 1, TransientResponse, "Uh oh"),
    (200, JSON, b"[1, 2]", 1, RandomUserError, "not an object"),
])
def test_bad_responses_name_the_problem(status, headers, body, requested, kind, text):
    with pytest.raises(kind, match=text) as failure:
        validate_response(status, headers, body, requested)
    if status == 429:
        assert failure.value.retry_after_s == 7.0


def test_page_plan_uses_one_page_size():
    assert page_plan(500) == [(1, 500)]
    assert page_plan(5000) == [(1, 5000)]
    assert page_plan(12000) == [(1, 5000), (2, 5000), (3, 5000)]
    with pytest.raises(ValueError):
        page_plan(0)


def test_backoff_grows_is_capped_and_honours_retry_after():
    policy = RetryPolicy(base_delay_s=1, max_delay_s=8)
    rng = random.Random(1)
    delays = [policy.delay(attempt, None, rng) for attempt in range(1, 8)]
    assert all(0.5 <= d <= 8 for d in delays)
    assert max(delays[4:]) > max(delays[:1])
    assert policy.delay(1, 20.0, rng) == 20.0


@dataclass
class FakeResponse:
    status_code: int
    content: bytes
    headers: dict = field(default_factory=lambda: dict(JSON))


@dataclass
class ScriptedTransport:
    responses: list
    calls: list = field(default_factory=list)

    def run(self, endpoint, data, headers=None, extra_options=None):
        self.calls.append((endpoint, dict(data)))
        return self.responses.pop(0)


def _client(transport, **policy):
    clock = iter(range(0, 10_000))
    return RandomUserClient(transport, RetryPolicy(**policy), sleep=lambda s: None,
                            clock=lambda: float(next(clock)))


def test_retries_transient_failures_then_succeeds():
    transport = ScriptedTransport([FakeResponse(429, b"{}", {"Retry-After": "1"}),
                                   FakeResponse(500, b"oops", {}),
                                   FakeResponse(200, _body(2))])
    page = _client(transport).fetch_page("seed", 1, 2)
    assert page.attempts == 3
    assert transport.calls[0] == ("api/1.4/", {"seed": "seed", "page": 1, "results": 2})


def test_gives_up_with_the_last_problem_in_the_message():
    transport = ScriptedTransport([FakeResponse(503, b"down", {})] * 3)
    with pytest.raises(RandomUserError, match=r"after 3 attempt\(s\): HTTP 503"):
        _client(transport, max_attempts=3).fetch_page("seed", 1, 2)


def test_a_refusal_is_not_retried():
    transport = ScriptedTransport([FakeResponse(404, b"Not Found", {})])
    with pytest.raises(RandomUserError, match="refused"):
        _client(transport).fetch_page("seed", 1, 2)
    assert len(transport.calls) == 1


def test_window_pages_with_one_seed_and_trims_the_last_page():
    transport = ScriptedTransport([FakeResponse(200, _body(5000)) for _ in range(3)])
    pages = list(_client(transport).iter_window("seed", 12000))
    assert [len(p.results) for p in pages] == [5000, 5000, 2000]
    assert [c[1]["page"] for c in transport.calls] == [1, 2, 3]
    assert {c[1]["seed"] for c in transport.calls} == {"seed"}
