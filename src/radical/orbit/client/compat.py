"""The original Orbit's client API beside ours: callback styles, plugin maps, the topology feed.

Scripts written for the original Orbit (its bridge-era 0.2.x release) run unchanged
against this SDK (docs/compat.md). Where the two APIs use one name differently, this
module holds the rule that tells them apart, so ``bridge.py``, ``endpoint.py`` and
``plugin.py`` stay about what they do.

Callbacks come in three styles, each named by how it is called:

* ``"event"``: ``callback(event)``, ours, for ``BridgeClient.register_callback``;
* ``"topic"``: ``callback(topic, payload)``, ours, for ``register_notification_callback``;
* ``"original"``: ``callback(endpoint, plugin, topic, data)``, the original's, for both.

:func:`choose_style` reads the callable's signature. When exactly one offered style
fits its positional parameters, that is the style. When several fit (``*args``,
parameters with defaults) or the signature cannot be read (some C callables), the
registering call decides: the original's call shape picks ``"original"``, ours picks
ours; ``style=`` always overrides. A callable that fits none is refused at
registration with a :class:`~radical.orbit.errors.UsageError`, instead of failing on
every event later.
"""

from __future__ import annotations

import copy
import inspect
import logging
import math
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

from ..errors import OrbitError, UsageError, quoted

__all__ = [
    "ARITY",
    "CallbackStyle",
    "TopologyCallback",
    "TopologyFeed",
    "as_original",
    "choose_style",
    "describe",
    "endpoint_names",
    "one_of",
    "original_info",
    "plugins_by_name",
    "positional_range",
]

log = logging.getLogger(__name__)

CallbackStyle = Literal["event", "topic", "original"]
#: how many positional arguments each style passes
ARITY: dict[str, int] = {"event": 1, "topic": 2, "original": 4}
_SHAPES: dict[str, str] = {
    "event": "callback(event)",
    "topic": "callback(topic, payload)",
    "original": "callback(endpoint, plugin, topic, data)",
}
_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def positional_range(fn: Callable[..., Any]) -> tuple[int, float] | None:
    """``(fewest, most)`` positional arguments ``fn`` can be called with (``most`` is
    ``inf`` with ``*args``); ``(1, 0)``, which nothing fits, if it has a required
    keyword-only parameter; None when ``inspect`` cannot read its signature."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    fewest, most = 0, 0.0
    for param in sig.parameters.values():
        if param.kind in _POSITIONAL:
            most += 1
            if param.default is param.empty:
                fewest += 1
        elif param.kind is inspect.Parameter.VAR_POSITIONAL:
            most = math.inf
        elif param.kind is inspect.Parameter.KEYWORD_ONLY and param.default is param.empty:
            return (1, 0)
    return fewest, most


def describe(callback: object) -> str:
    """A callable's name for messages; never its repr, which may show bound arguments (a token in a partial)."""
    name = getattr(callback, "__qualname__", None) or type(callback).__qualname__
    return f"{name}()" if callable(callback) else f"a {type(callback).__name__}"


def choose_style(
    callback: Any,
    offered: tuple[CallbackStyle, ...],
    default: CallbackStyle,
    style: str | None,
    where: str,
) -> CallbackStyle:
    """The style ``callback`` is called in (see the module docstring for the rule).

    :param offered: the styles this registration supports (ours first)
    :param default: what the registering call's shape says, for an ambiguous callable
    :param style: the caller's explicit choice, or None
    :param where: the registering call, to start error messages
    """
    shapes = " or ".join(f"{_SHAPES[s]} (style={s!r})" for s in offered)
    if style is not None:
        for known in offered:
            if style == known:
                return known
        raise UsageError(f"{where}: style must be one of {', '.join(repr(s) for s in offered)}, got {quoted(style)}")
    if not callable(callback):
        raise UsageError(f"{where}: callback must be callable as {shapes}, got {describe(callback)}")
    span = positional_range(callback)
    if span is None:
        log.debug("%s: the signature of %s cannot be read; calling it as %s", where, describe(callback), _SHAPES[default])
        return default
    fewest, most = span
    fits = [s for s in offered if fewest <= ARITY[s] <= most]
    if len(fits) == 1:
        return fits[0]
    if not fits:
        raise UsageError(
            f"{where}: {describe(callback)} cannot be called as {shapes}; "
            "give it one of those signatures (or pass style=... if it accepts them in a way inspect cannot see)"
        )
    chosen = default if default in fits else fits[0]
    log.debug("%s: %s accepts %s; calling it as %s (pass style= to choose)", where, describe(callback), " and ".join(fits), _SHAPES[chosen])
    return chosen


def as_original(callback: Callable[..., object]) -> Callable[[dict[str, Any]], None]:
    """An event callback that calls ``callback(endpoint, plugin, topic, data)`` for
    notifications, as the original Orbit did (it had no other events for it)."""

    def deliver(event: dict[str, Any]) -> None:
        if event.get("kind") == "notification":
            callback(event.get("endpoint"), event.get("plugin"), event.get("topic"), event.get("payload") or {})

    return deliver


def one_of(where: str, ours: str | None, theirs: str | None, our_name: str, their_name: str) -> str | None:
    """A filter given under our name or the original's (``endpoint_id=``), never both."""
    if ours is not None and theirs is not None:
        raise UsageError(f"{where}: give {our_name} or {their_name}, not both")
    return ours if theirs is None else theirs


def endpoint_names(names: Any, pattern: re.Pattern[str]) -> list[str]:
    """The original ``wait_for_endpoint``'s ``names``: an iterable of endpoint names, at least one."""
    if isinstance(names, (bytes, Mapping)) or not isinstance(names, Iterable):
        raise UsageError(f"wait_for_endpoint: names must be an endpoint name or a list of them, got {quoted(names)}")
    wanted = list(names)
    if not wanted:
        raise UsageError("wait_for_endpoint: no endpoint names given, so there is nothing to wait for")
    for name in wanted:
        if not isinstance(name, str) or not pattern.fullmatch(name):
            raise UsageError(f"wait_for_endpoint: {quoted(name)} is not an endpoint name")
    return wanted


def plugins_by_name(endpoint: str, plugins: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """An endpoint's plugin list as the original Orbit gave it: ``{name: info}``, each
    info with its ``namespace`` (``/<endpoint>/<plugin>``, the plugin's path on the bridge)."""
    out: dict[str, dict[str, Any]] = {}
    for plugin in plugins:
        name = str(plugin.get("name"))
        out[name] = {**plugin, "namespace": f"/{endpoint}/{name}"}
    return out


def original_info(info: Mapping[str, Any]) -> dict[str, Any]:
    """One endpoint's info (``GET /endpoints``) with ``plugins`` as the original's dict."""
    name = str(info.get("name"))
    return {**info, "plugins": plugins_by_name(name, info.get("plugins") or [])}


TopologyCallback = Callable[[dict[str, dict[str, Any]]], object]


class TopologyFeed:
    """The original's topology callbacks: ``callback(endpoints)`` on every connect and
    disconnect, ``endpoints`` being ``{name: info}`` of every connected endpoint.

    Our topology events name one endpoint each; this keeps the whole map on the client.
    :meth:`start` subscribes first and then seeds the map from ``GET /endpoints`` while
    holding the lock the event handler waits for, so each event is applied after the
    seed, in order: one already in the seed is applied again to the same effect, and
    none is lost. A ``gap`` event (events missed, e.g. a new bridge) re-seeds the map.

    :param fetch: returns ``GET /endpoints``'s list (``BridgeClient.endpoints``)
    :param subscribe: registers the event handler; returns an id for ``unsubscribe``
    :param unsubscribe: forgets that id
    """

    def __init__(
        self,
        fetch: Callable[[], list[dict[str, Any]]],
        subscribe: Callable[[Callable[[dict[str, Any]], None]], str],
        unsubscribe: Callable[[str], object],
    ) -> None:
        self._fetch = fetch
        self._subscribe = subscribe
        self._unsubscribe = unsubscribe
        self._lock = threading.Lock()
        self._endpoints: dict[str, dict[str, Any]] = {}
        self._callbacks: list[TopologyCallback] = []
        self._cid: str | None = None

    def __len__(self) -> int:
        return len(self._callbacks)

    def add(self, callback: TopologyCallback) -> None:
        """Register ``callback``; the first one subscribes and seeds the map."""
        if not callable(callback):
            raise UsageError(f"register_topology_callback: callback must be callable as callback(endpoints), got {describe(callback)}")
        with self._lock:
            if self._cid is None:
                cid = self._subscribe(self._on_event)
                try:
                    self._seed()
                except OrbitError:
                    self._unsubscribe(cid)
                    raise
                self._cid = cid
            self._callbacks.append(callback)

    def remove(self, callback: TopologyCallback) -> bool:
        """Forget one registration of ``callback``; the last one unsubscribes."""
        with self._lock:
            if callback not in self._callbacks:
                return False
            self._callbacks.remove(callback)
            cid = self._cid if not self._callbacks else None
            if cid is not None:
                self._cid = None
                self._endpoints.clear()
        if cid is not None:
            self._unsubscribe(cid)
        return True

    def _seed(self) -> None:
        self._endpoints = {
            str(info.get("name")): original_info(info) for info in self._fetch() if info.get("alive", True)
        }

    def _on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("kind")
        if kind not in ("topology", "gap"):
            return
        with self._lock:
            if self._cid is None:
                return
            if kind == "gap":
                try:
                    self._seed()
                except OrbitError as exc:
                    log.warning("topology callbacks: cannot re-read the endpoints after missed events: %s", exc)
                    return
            else:
                name = event.get("endpoint")
                if not isinstance(name, str):
                    return
                if event.get("topic") == "endpoint_connected" and isinstance(event.get("payload"), dict):
                    self._endpoints[name] = original_info(event["payload"])
                else:
                    self._endpoints.pop(name, None)
            snapshot = copy.deepcopy(self._endpoints)  # a callback may change its copy
            callbacks = list(self._callbacks)
        for callback in callbacks:
            try:
                callback(snapshot)
            except Exception:  # one broken callback must not starve the others
                log.exception("topology callback %r failed", callback)
