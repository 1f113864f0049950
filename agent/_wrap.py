"""The wrappers ``@observe`` puts around functions, coroutines and (async) generators.

The user's function is always called outside every telemetry ``try``: its result is
returned as the same object and its exception re-raised with a bare ``raise``."""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any

from infermeter.agent._begin import begin
from infermeter.agent._call import NULL_CALL, Call, NullCall
from infermeter.agent._duck import LOGGER, Shown
from infermeter.agent._spec import Spec, make_spec

__all__ = ["decorate"]


def _wrap_function(func: Callable[..., Any], spec: Spec) -> Callable[..., Any]:
    @functools.wraps(func)
    def observed(*args: Any, **kwargs: Any) -> Any:
        call = begin(spec, args, kwargs, True)
        if call is None:
            return func(*args, **kwargs)
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            call.fail(exc)
            raise
        call.finish(result)
        return result

    return observed


def _wrap_coroutine(func: Callable[..., Any], spec: Spec) -> Callable[..., Any]:
    @functools.wraps(func)
    async def observed(*args: Any, **kwargs: Any) -> Any:
        call = begin(spec, args, kwargs, True)
        if call is None:
            return await func(*args, **kwargs)
        try:
            result = await func(*args, **kwargs)
        except BaseException as exc:
            call.fail(exc)
            raise
        call.finish(result)
        return result

    return observed


def _wrap_generator(func: Callable[..., Any], spec: Spec) -> Callable[..., Any]:
    @functools.wraps(func)
    def observed(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        # Runs at the first next(): the span covers the stream, not its creation.
        call = begin(spec, args, kwargs, False)
        if call is None:
            return (yield from func(*args, **kwargs))
        call.enter()
        try:
            inner = func(*args, **kwargs)
        except BaseException as exc:
            call.fail(exc)
            raise
        call.exit()
        sent: Any = None
        thrown: BaseException | None = None
        while True:
            call.enter()
            try:
                chunk = inner.send(sent) if thrown is None else inner.throw(thrown)
            except StopIteration as stop:
                call.finish(stop.value)
                return stop.value
            except BaseException as exc:
                call.fail(exc)
                raise
            call.exit()
            call.on_chunk(chunk)
            sent = thrown = None
            try:
                sent = yield chunk
            except GeneratorExit:
                call.enter()
                try:
                    inner.close()
                except BaseException as exc:
                    call.fail(exc)
                    raise
                call.closed()
                raise
            except BaseException as exc:  # noqa: BLE001 - forwarded into the wrapped stream
                thrown = exc

    return observed


def _wrap_async_generator(func: Callable[..., Any], spec: Spec) -> Callable[..., Any]:
    @functools.wraps(func)
    async def observed(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        # Unobserved (telemetry off or failed): the same delegation loop with no-op hooks,
        # so asend()/athrow() still reach the wrapped generator.
        call: Call | NullCall = begin(spec, args, kwargs, False) or NULL_CALL
        call.enter()
        try:
            inner = func(*args, **kwargs)
        except BaseException as exc:
            call.fail(exc)
            raise
        call.exit()
        sent: Any = None
        thrown: BaseException | None = None
        while True:
            call.enter()
            try:
                if thrown is None:
                    chunk = await inner.asend(sent)
                else:
                    chunk = await inner.athrow(thrown)
            except StopAsyncIteration:
                call.finish(None)
                return
            except BaseException as exc:
                call.fail(exc)
                raise
            call.exit()
            call.on_chunk(chunk)
            sent = thrown = None
            try:
                sent = yield chunk
            except GeneratorExit:
                call.enter()
                try:
                    await inner.aclose()
                except BaseException as exc:
                    call.fail(exc)
                    raise
                call.closed()
                raise
            except BaseException as exc:  # noqa: BLE001 - forwarded into the wrapped stream
                thrown = exc

    return observed


def decorate(func: Any, options: dict[str, Any]) -> Any:
    # @observe above @classmethod/@staticmethod: wrap the function inside.
    if isinstance(func, classmethod | staticmethod):
        return type(func)(decorate(func.__func__, options))
    if not callable(func):
        LOGGER.warning("infermeter: @observe needs a callable, got %s; left as is", Shown(func))
        return func
    qualname = getattr(func, "__qualname__", None) or getattr(func, "__name__", None)
    if not isinstance(qualname, str):
        qualname = type(func).__qualname__
    if inspect.isasyncgenfunction(func):
        return _wrap_async_generator(func, make_spec(qualname=qualname, stream=True, **options))
    if inspect.isgeneratorfunction(func):
        return _wrap_generator(func, make_spec(qualname=qualname, stream=True, **options))
    spec = make_spec(qualname=qualname, stream=False, **options)
    call_method = getattr(func, "__call__", None)  # noqa: B004 - async callable objects
    if inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(call_method):
        return _wrap_coroutine(func, spec)
    return _wrap_function(func, spec)
