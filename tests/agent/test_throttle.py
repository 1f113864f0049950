"""Throttles on exceptions and results: 429s, RateLimitError, botocore codes, Retry-After."""

from __future__ import annotations

import email.utils
import time
from types import SimpleNamespace
from typing import Any

import pytest
from infermeter.agent import observe, testing
from infermeter.agent._throttle import throttle_from_exception, throttle_from_result

Obj = SimpleNamespace


class RateLimitError(Exception):
    """Shaped like openai.RateLimitError / anthropic.RateLimitError."""

    def __init__(self, headers: dict[str, str]) -> None:
        super().__init__("Error code: 429 - rate limited")
        self.status_code = 429
        self.response = Obj(status_code=429, headers=headers)


class ClientError(Exception):
    """Shaped like botocore.exceptions.ClientError."""

    def __init__(self, code: str, status: int = 400, headers: dict[str, str] | None = None) -> None:
        super().__init__(code)
        self.response = {
            "Error": {"Code": code, "Message": "slow down"},
            "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": headers or {}},
        }


class HTTPStatusError(Exception):
    """Shaped like httpx.HTTPStatusError."""

    def __init__(self, status: int, headers: dict[str, str]) -> None:
        super().__init__(f"status {status}")
        self.response = Obj(status_code=status, headers=headers)


def test_openai_style_rate_limit_with_retry_after_ms() -> None:
    throttle = throttle_from_exception(RateLimitError({"retry-after-ms": "1500"}))
    assert throttle is not None
    assert throttle.retry_after == 1.5


def test_retry_after_seconds_and_case_insensitive_headers() -> None:
    throttle = throttle_from_exception(HTTPStatusError(429, {"Retry-After": "7"}))
    assert throttle is not None and throttle.retry_after == 7.0


def test_retry_after_http_date() -> None:
    when = email.utils.formatdate(time.time() + 120, usegmt=True)
    throttle = throttle_from_exception(HTTPStatusError(429, {"retry-after": when}))
    assert throttle is not None and throttle.retry_after is not None
    assert 100 < throttle.retry_after <= 121


@pytest.mark.parametrize("value", ["soon", "-3", "nan", ""])
def test_unusable_retry_after_is_left_out(value: str) -> None:
    throttle = throttle_from_exception(HTTPStatusError(429, {"retry-after": value}))
    assert throttle is not None and throttle.retry_after is None


@pytest.mark.parametrize(
    "code",
    [
        "ThrottlingException",
        "TooManyRequestsException",
        "Throttling",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "SlowDown",
    ],
)
def test_botocore_throttling_codes(code: str) -> None:
    throttle = throttle_from_exception(ClientError(code, headers={"retry-after": "2"}))
    assert throttle is not None and throttle.retry_after == 2.0


def test_botocore_429_status_and_other_errors() -> None:
    assert throttle_from_exception(ClientError("SomethingElse", status=429)) is not None
    assert throttle_from_exception(ClientError("ValidationException")) is None
    assert throttle_from_exception(ClientError("AccessDeniedException", status=403)) is None


@pytest.mark.parametrize(
    "exc",
    [
        type("TooManyRequests", (Exception,), {})(),
        type("ResourceExhausted", (Exception,), {})(),  # google-api-core
        type("ThrottledError", (Exception,), {})(),
        type("MyError", (RateLimitError,), {})({}),  # subclass of a RateLimitError
    ],
)
def test_exception_class_names(exc: Exception) -> None:
    assert throttle_from_exception(exc) is not None


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("429 in the message does not count"),
        HTTPStatusError(500, {"retry-after": "1"}),
        HTTPStatusError(503, {}),
        TimeoutError(),
    ],
)
def test_non_throttles(exc: Exception) -> None:
    assert throttle_from_exception(exc) is None


def test_urllib_style_status_and_code() -> None:
    exc = Exception()
    exc.code = 429  # type: ignore[attr-defined]
    exc.headers = {"Retry-After": "3"}  # type: ignore[attr-defined]
    throttle = throttle_from_exception(exc)
    assert throttle is not None and throttle.retry_after == 3.0


def test_returned_429_responses() -> None:
    assert throttle_from_result(Obj(status_code=429, headers={"retry-after": "4"})) is not None
    assert throttle_from_result(Obj(status=429, headers={})) is not None
    assert throttle_from_result(Obj(status_code=200)) is None
    assert throttle_from_result({"status_code": 429}) is not None
    assert throttle_from_result("429") is None


def test_a_broken_response_property_does_not_hide_the_throttle() -> None:
    class WeirdError(Exception):
        status_code = 429

        @property
        def response(self) -> Any:
            raise RuntimeError("no response object")

    throttle = throttle_from_exception(WeirdError())
    assert throttle is not None and throttle.retry_after is None


def test_throttled_span_attributes_and_metrics() -> None:
    @observe(operation="chat", provider="openai", model="gpt-4o")
    def ask() -> None:
        raise RateLimitError({"retry-after-ms": "250"})

    with testing.capture() as cap, pytest.raises(RateLimitError):
        ask()
    attributes = dict(cap.spans[0].attributes or {})
    assert attributes["infermeter.throttled"] is True
    assert attributes["infermeter.retry_after"] == 0.25
    assert attributes["error.type"] == f"{__name__}.RateLimitError"
    duration = cap.metric_points("gen_ai.client.operation.duration")[0]
    assert duration.attributes["error.type"] == f"{__name__}.RateLimitError"


def test_a_returned_429_marks_the_span_and_counts_as_a_failed_attempt() -> None:
    responses = iter([Obj(status_code=429, headers={"retry-after": "1"}), Obj(status_code=200)])

    @observe(name="call")
    def call() -> Any:
        return next(responses)

    @observe
    def handler() -> None:
        while call().status_code == 429:
            pass

    with testing.capture() as cap:
        handler()
    first, second = cap.spans_named("call")
    assert (first.attributes or {})["infermeter.throttled"] is True
    assert (first.attributes or {})["error.type"] == "429"
    assert (first.attributes or {})["infermeter.retry_after"] == 1.0
    assert first.status.status_code.name == "ERROR"
    assert "infermeter.throttled" not in (second.attributes or {})
    assert (second.attributes or {})["infermeter.retries"] == 1


def test_urllib_http_error_headers() -> None:
    import email.message
    import urllib.error

    headers = email.message.Message()
    headers["Retry-After"] = "9"
    exc = urllib.error.HTTPError("https://api.example/v1", 429, "Too Many Requests", headers, None)
    throttle = throttle_from_exception(exc)
    assert throttle is not None and throttle.retry_after == 9.0
