"""A randomuser.me client on the http provider's HttpHook (connection `randomuser_api`).

Pins API version 1.4 in the path, pages large windows with one seed, retries transient failures
(429, 5xx, timeouts, connection errors, the API's degenerate empty success) with exponential
backoff and jitter while honouring `Retry-After`, and validates every response, so a bad
answer fails with a message that names the problem instead of becoming "no users".
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Protocol

import orjson
import requests

log = logging.getLogger(__name__)

API_VERSION = "1.4"
MAX_RESULTS_PER_REQUEST = 5000
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


class RandomUserError(RuntimeError):
    """The API could not give a valid answer; the message says why."""


class TransientResponse(RandomUserError):
    """A failure worth retrying (rate limit, server error, degenerate success)."""

    def __init__(self, message: str, retry_after_s: float | None = None):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ResponseLike(Protocol):
    status_code: int
    headers: Any
    content: bytes


class Transport(Protocol):
    def run(self, endpoint: str, data: dict[str, Any], headers: dict[str, str] | None = ...,
            extra_options: dict[str, Any] | None = ...) -> ResponseLike: ...


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    base_delay_s: float = 1.0
    max_delay_s: float = 30.0
    max_total_s: float = 300.0
    request_timeout_s: float = 60.0

    def delay(self, attempt: int, retry_after_s: float | None, rng: random.Random) -> float:
        """Full-jitter exponential backoff; a server's Retry-After is a floor, not a suggestion."""
        backoff = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        jittered = rng.uniform(backoff / 2, backoff)
        return max(jittered, retry_after_s or 0.0)


@dataclass(frozen=True)
class Page:
    page: int
    requested: int
    payload: dict[str, Any]
    body: bytes
    attempts: int
    http_seconds: float
    parse_seconds: float

    @property
    def results(self) -> list[Any]:
        return self.payload["results"]


def page_plan(total: int, max_per_request: int = MAX_RESULTS_PER_REQUEST) -> list[tuple[int, int]]:
    """(page, results) requests covering `total` users with one page size, so one seed pages
    through one reproducible set; the last page may be trimmed by the caller."""
    if total < 1:
        raise ValueError(f"users per window must be at least 1, got {total}")
    size = min(total, max_per_request)
    return [(page, size) for page in range(1, math.ceil(total / size) + 1)]


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _int_or_digits(digits: str) -> int | str:
    # Past Python's int-from-text limit the digits stay text: the record is then rejected on
    # its own (an integer field gets text), instead of the whole page failing to parse.
    return int(digits) if len(digits) < 4000 else digits


def parse_json(body: bytes) -> Any:
    """orjson for speed; where orjson refuses what JSON allows (a lone surrogate escape, an
    integer too long for a double), the standard library's parser, so one odd record does not
    make its whole page unreadable. Both refuse what is not JSON (ValueError)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as fast_error:
        try:
            return json.loads(body.decode("utf-8"), parse_int=_int_or_digits)
        except (ValueError, RecursionError):
            raise fast_error from None


def validate_response(status: int, headers: Any, body: bytes, requested: int,
                      version: str = API_VERSION) -> dict[str, Any]:
    """Returns the parsed payload or raises: TransientResponse for what a retry may fix,
    RandomUserError for what it cannot."""
    content_type = headers.get("Content-Type", "?") if headers is not None else "?"
    preview = body[:160].decode("utf-8", "replace").replace("\n", " ")
    if status != 200:
        message = f"HTTP {status} ({content_type}): {preview!r}"
        if status in RETRYABLE_STATUS:
            raise TransientResponse(message, _retry_after(headers))
        raise RandomUserError(f"randomuser API refused the request: {message}")
    try:
        payload = parse_json(body)
    except ValueError as exc:
        raise TransientResponse(
            f"HTTP 200 with a body that is not JSON ({content_type}, {len(body)} bytes, "
            f"{exc.msg} at byte {exc.pos}): {preview!r}") from exc
    if not isinstance(payload, dict):
        raise RandomUserError(f"response is JSON but not an object: {preview!r}")
    if "error" in payload:
        raise TransientResponse(f"API error body: {payload['error']!r}")
    results, info = payload.get("results"), payload.get("info")
    if not isinstance(results, list):
        raise RandomUserError(f"response has no 'results' list: {preview!r}")
    if not isinstance(info, dict):
        raise RandomUserError("response has no 'info' block (was `noinfo` sent?)")
    if not results:
        raise TransientResponse(
            f"HTTP 200 with an empty 'results' list while info.results={info.get('results')!r}: "
            "the API's degenerate success, not 'no users'")
    if info.get("results") != len(results):
        raise RandomUserError(
            f"info.results={info.get('results')!r} but {len(results)} results were returned")
    if len(results) != requested:
        raise RandomUserError(
            f"asked for {requested} users, got {len(results)} (the API silently turns an "
            "out-of-range 'results' into 1)")
    if str(info.get("version")) != version:
        raise RandomUserError(f"asked for API version {version}, got {info.get('version')!r}")
    return payload


@dataclass
class RandomUserClient:
    transport: Transport
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    version: str = API_VERSION
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    rng: random.Random = field(default_factory=random.Random)

    @property
    def endpoint(self) -> str:
        return f"api/{self.version}/"

    def fetch_page(self, seed: str, page: int, results: int, nat: str | None = None) -> Page:
        params: dict[str, Any] = {"seed": seed, "page": page, "results": results}
        if nat:
            params["nat"] = nat
        started = self.clock()
        deadline = started + self.policy.max_total_s
        http_seconds = 0.0
        last_problem = "no attempt made"
        for attempt in range(1, self.policy.max_attempts + 1):
            request_started = self.clock()
            try:
                response = self.transport.run(
                    self.endpoint, data=params, headers={"Accept": "application/json"},
                    extra_options={"check_response": False,
                                   "timeout": self.policy.request_timeout_s})
                http_seconds += self.clock() - request_started
                parse_started = self.clock()
                payload = validate_response(response.status_code, response.headers,
                                            response.content, results, self.version)
                return Page(page, results, payload, response.content, attempt, http_seconds,
                            self.clock() - parse_started)
            except TransientResponse as exc:
                last_problem, retry_after = str(exc), exc.retry_after_s
            except (requests.ConnectionError, requests.Timeout) as exc:
                http_seconds += self.clock() - request_started
                last_problem, retry_after = f"{type(exc).__name__}: {exc}", None
            if attempt == self.policy.max_attempts:
                break
            pause = self.policy.delay(attempt, retry_after, self.rng)
            if self.clock() + pause > deadline:
                last_problem += f" (retry budget of {self.policy.max_total_s:.0f}s used up)"
                break
            log.warning("randomuser page %d attempt %d/%d failed: %s; retrying in %.1fs",
                        page, attempt, self.policy.max_attempts, last_problem, pause)
            self.sleep(pause)
        raise RandomUserError(
            f"randomuser API gave no valid answer for seed={seed!r} page={page} after "
            f"{attempt} attempt(s): {last_problem}")

    def iter_window(self, seed: str, total: int, nat: str | None = None,
                    prefetch: int = 2) -> Iterator[Page]:
        """Yields the window's pages in order while up to `prefetch` more are on their way, so
        the API builds the next pages while the caller stages the last one. The last page of a
        paged window is trimmed to the window's size."""
        plan = page_plan(total)
        fetched = 0
        with ThreadPoolExecutor(max_workers=max(1, min(prefetch, len(plan)))) as pool:
            requests = (pool.submit(self.fetch_page, seed, page, size, nat)
                        for page, size in plan)  # submitted as the generator is advanced
            pending: deque[Future[Page]] = deque(islice(requests, prefetch))
            try:
                while pending:
                    result = pending.popleft().result()
                    pending.extend(islice(requests, 1))
                    keep = min(result.requested, total - fetched)
                    if keep < result.requested:
                        result.payload["results"] = result.payload["results"][:keep]
                    fetched += keep
                    log.info("fetched page %d: %d users (%d/%d) in %d attempt(s)", result.page,
                             keep, fetched, total, result.attempts)
                    yield result
            finally:
                for future in pending:
                    future.cancel()
