"""Provider throttles recognised on exceptions and return values, with their Retry-After.

A call is throttled when it raised or returned something that says so:

* an HTTP status 429 on ``status_code``, ``status``, ``code``, ``http_status``, or on
  ``response.status_code`` / ``response.status`` (httpx, requests, aiohttp, urllib, the
  OpenAI and Anthropic SDKs' ``APIStatusError``);
* an exception class (or base class) named like ``RateLimitError``, ``TooManyRequests…``,
  ``Throttl…`` or ``ResourceExhausted`` (google-api-core);
* a botocore-style ``ClientError`` whose ``response["Error"]["Code"]`` is one of botocore's
  throttling codes, or whose ``response["ResponseMetadata"]["HTTPStatusCode"]`` is 429.

Retry-After comes from ``retry-after-ms`` (milliseconds; the OpenAI and Anthropic APIs send
it) or ``retry-after`` (seconds or an HTTP date), looked up case-insensitively on
``response.headers``, ``headers`` or botocore's ``ResponseMetadata.HTTPHeaders``.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from infermeter.agent._duck import LOGGER, field, path

__all__ = ["Throttle", "throttle_from_exception", "throttle_from_result"]

_TOO_MANY_REQUESTS: Final = 429
_NAME_MARKERS: Final = ("ratelimit", "toomanyrequests", "throttl", "resourceexhausted")
# botocore's retry handler treats these error codes as throttling (standard retry mode).
_BOTOCORE_THROTTLE_CODES: Final = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)
_STATUS_FIELDS: Final = ("status_code", "status", "code", "http_status")


@dataclass(frozen=True, slots=True)
class Throttle:
    retry_after: float | None = None


def _is_429(value: object) -> bool:
    # Some clients use HTTPStatus enums (int subclasses); strings like "429" appear too.
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value == _TOO_MANY_REQUESTS
    return isinstance(value, str) and value.strip() == "429"


def _status_is_429(obj: object) -> bool:
    for name in _STATUS_FIELDS:
        if _is_429(field(obj, name)):
            return True
    response = field(obj, "response")
    if response is None or isinstance(response, Mapping):
        return False
    return _is_429(field(response, "status_code")) or _is_429(field(response, "status"))


def _botocore_throttled(exc: BaseException) -> bool:
    response = field(exc, "response")
    if not isinstance(response, Mapping):
        return False
    code = path(response, "Error", "Code")
    if isinstance(code, str) and code in _BOTOCORE_THROTTLE_CODES:
        return True
    return _is_429(path(response, "ResponseMetadata", "HTTPStatusCode"))


def _named_like_throttle(exc: BaseException) -> bool:
    for cls in type(exc).__mro__:
        lowered = cls.__name__.lower()
        if any(marker in lowered for marker in _NAME_MARKERS):
            return True
    return False


def _header(headers: object, name: str) -> object:
    """Case-insensitive header lookup on dicts, httpx/requests headers, email.Message."""
    if headers is None:
        return None
    value = field(headers, name)
    if value is not None:
        return value
    try:
        if isinstance(headers, Mapping):
            for key, item in headers.items():
                if isinstance(key, str) and key.lower() == name:
                    return item
            return None
        # email.message.Message (urllib's HTTPError.headers): case-insensitive .get().
        get = getattr(headers, "get", None)
        return get(name) if callable(get) else None
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # noqa: BLE001 - a broken mapping must read as "absent"
        return None


def _parse_retry_after(headers: object) -> float | None:
    raw_ms = _header(headers, "retry-after-ms")
    if raw_ms is not None:
        try:
            value = float(str(raw_ms).strip()) / 1000.0
        except ValueError:
            value = math.nan
        if math.isfinite(value) and value >= 0:
            return value
    raw = _header(headers, "retry-after")
    if raw is None:
        return None
    raw_text = str(raw).strip()
    try:
        value = float(raw_text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(raw_text)
        except (TypeError, ValueError, IndexError):
            return None
        value = max(when.timestamp() - time.time(), 0.0)
    return value if math.isfinite(value) and value >= 0 else None


def _retry_after(obj: object) -> float | None:
    candidates = [path(obj, "response", "headers"), field(obj, "headers")]
    response = field(obj, "response")
    if isinstance(response, Mapping):
        candidates.append(path(response, "ResponseMetadata", "HTTPHeaders"))
    for headers in candidates:
        if headers is None:
            continue
        try:
            value = _parse_retry_after(headers)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException:  # noqa: BLE001 - odd header objects must read as "absent"
            LOGGER.debug("infermeter: unreadable retry-after header", exc_info=True)
            continue
        if value is not None:
            return value
    return None


def throttle_from_exception(exc: BaseException) -> Throttle | None:
    if not (_named_like_throttle(exc) or _status_is_429(exc) or _botocore_throttled(exc)):
        return None
    return Throttle(_retry_after(exc))


def throttle_from_result(result: object) -> Throttle | None:
    """A returned HTTP response with status 429 (``status_code``: httpx, requests, the
    OpenAI/Anthropic raw responses; ``status``: aiohttp, urllib)."""
    # Most results carry neither field: two lookups, no checks (this runs on every call).
    code = field(result, "status_code")
    status = field(result, "status")
    if (code is None and status is None) or not (_is_429(code) or _is_429(status)):
        return None
    return Throttle(_retry_after(result))
