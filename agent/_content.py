"""Opt-in prompt/response text capture as ``gen_ai.input.messages`` / ``gen_ai.output.messages``.

Off unless ``capture_content`` is enabled (``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``,
the variable OpenTelemetry's GenAI instrumentations use). Messages follow the GenAI
convention's JSON shape: ``[{"role": ..., "parts": [{"type": "text", "content": ...}]}]``.
Serialisation runs on the caller's thread, which is acceptable only because it is opt-in;
text is truncated to ``max_chars`` in total.

Input comes from a ``messages=`` keyword (chat-style dicts), else a ``prompt=`` /
``input=`` / ``question=`` / ``query=`` string keyword, else the first positional string.
Output comes from a string result, OpenAI chat ``choices[i].message``, OpenAI responses
``output_text``, or Anthropic ``content[i].text``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from infermeter.agent._duck import field, path

__all__ = ["input_messages", "messages_json", "normalise_messages", "output_messages"]

_PROMPT_KEYWORDS: Final = ("prompt", "input", "question", "query")
_MAX_MESSAGES: Final = 64


def _text_part(content: str) -> dict[str, str]:
    return {"type": "text", "content": content}


def _parts(content: object) -> list[dict[str, str]]:
    if isinstance(content, str):
        return [_text_part(content)]
    parts: list[dict[str, str]] = []
    if isinstance(content, list | tuple):
        for part in content[:_MAX_MESSAGES]:
            value = field(part, "text")
            if value is None:
                value = field(part, "content")
            if isinstance(value, str):
                parts.append(_text_part(value))
    return parts


def normalise_messages(value: object, default_role: str) -> list[dict[str, Any]] | None:
    """Messages in the convention's shape from a string, a message, or a list of messages."""
    if isinstance(value, str):
        return [{"role": default_role, "parts": [_text_part(value)]}]
    if isinstance(value, Mapping):
        value = [value]
    if not isinstance(value, list | tuple):
        return None
    messages: list[dict[str, Any]] = []
    for message in value[:_MAX_MESSAGES]:
        if isinstance(message, str):
            messages.append({"role": default_role, "parts": [_text_part(message)]})
            continue
        role = field(message, "role")
        parts = _parts(field(message, "content"))
        if parts:
            messages.append(
                {"role": role if isinstance(role, str) else default_role, "parts": parts}
            )
    return messages or None


def input_messages(
    args: Sequence[object], kwargs: Mapping[str, object]
) -> list[dict[str, Any]] | None:
    if "messages" in kwargs:
        return normalise_messages(kwargs["messages"], "user")
    for name in _PROMPT_KEYWORDS:
        value = kwargs.get(name)
        if isinstance(value, str):
            return normalise_messages(value, "user")
    for value in args:
        if isinstance(value, str):
            return normalise_messages(value, "user")
    return None


def output_messages(result: object) -> list[dict[str, Any]] | None:
    if isinstance(result, str):
        return normalise_messages(result, "assistant")
    choices = field(result, "choices")
    if isinstance(choices, list | tuple) and choices:
        messages: list[dict[str, Any]] = []
        for choice in choices[:_MAX_MESSAGES]:
            content = path(choice, "message", "content")
            if isinstance(content, str):
                message: dict[str, Any] = {"role": "assistant", "parts": [_text_part(content)]}
                finish = field(choice, "finish_reason")
                if isinstance(finish, str):
                    message["finish_reason"] = finish
                messages.append(message)
        return messages or None
    output_text = field(result, "output_text")
    if isinstance(output_text, str):
        return normalise_messages(output_text, "assistant")
    content = field(result, "content")
    if isinstance(content, list | tuple):
        parts = _parts(content)
        if parts:
            return [{"role": "assistant", "parts": parts}]
    return None


def messages_json(messages: list[dict[str, Any]], max_chars: int) -> str:
    """JSON of the messages with text contents cut so the whole stays near ``max_chars``
    (cutting the text, not the JSON, keeps the attribute parseable)."""
    budget = max_chars
    for message in messages:
        for part in message["parts"]:
            content = part["content"]
            if len(content) > budget:
                part["content"] = content[:budget]
            budget = max(budget - len(part["content"]), 0)
    return json.dumps(messages, ensure_ascii=False, default=str)
