"""A span processor that runs the queued ends of observed calls before a flush or shutdown.

Observed calls end their spans on the background thread (``_recorder``). An application
or a FaaS extension that calls ``TracerProvider.force_flush()`` / ``shutdown()`` directly,
not through ``infermeter``, must still export every call that returned before: this
processor, added first to the providers infermeter builds, drains that queue, so the
processors after it see those spans.
"""

from __future__ import annotations

from infermeter.agent._recorder import RECORDER
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

__all__ = ["DrainFirst"]


class DrainFirst(SpanProcessor):
    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        RECORDER.drain()
        return True

    def shutdown(self) -> None:
        RECORDER.drain()
