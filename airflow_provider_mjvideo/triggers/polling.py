"""
One poller for many waits: the deferred waits of one triggerer share ``list-by-condition`` requests.

Every :class:`~airflow_provider_mjvideo.triggers.video.MidjourneyTaskTrigger` running in the same
event loop for the same connection (same base URL, speed-mode prefix, key and auth style) subscribes
its task id to one :class:`SharedTaskPoller`. Each poll interval the poller asks the server for all
pending ids with ``POST /mj/task/list-by-condition``, at most ``list_chunk_size`` ids per request
(a connection extra, default 100), and hands every subscriber the answer for its own task. It only
delivers *observations* — a :class:`~airflow_provider_mjvideo.models.MidjourneyTask`, ``None`` for an
id the server does not know, or the :class:`~airflow_provider_mjvideo.exceptions.MidjourneyError` a
poll ended with; what they mean is decided by each trigger's own
:class:`~airflow_provider_mjvideo.waiting.WaitTracker`.

Policy, in one place:

* **Keying.** One poller per (running event loop, connection id, base URL, route prefix, auth style,
  a digest of the key, request timeout, chunk size), in a registry keyed weakly by the loop: nothing is
  shared across loops (``dag.test()`` runs each trigger in a fresh loop), and a poller removes itself
  when its last subscriber leaves.
* **Intervals.** Subscribers are grouped by their ``poll_interval``; each group keeps its own cadence
  and a newcomer joins its group's next tick, so ids that share an interval share requests. A tick
  also takes along the members of any other group due within :data:`COALESCE_WINDOW` seconds (at most a
  quarter of that group's interval). A trigger with a 60 s interval is therefore never polled every
  10 s because a 10 s trigger exists, and N triggers with the same interval cost
  ``ceil(N / list_chunk_size)`` requests per interval.
* **Jitter.** A new group's first tick comes after a random delay in ``[0, min(interval,
  FIRST_POLL_JITTER_CAP))``: triggers created together share that tick anyway, and pollers of
  several triggerers do not start in lockstep. With ``batch_polling`` off, each trigger's first poll
  comes after a random delay in ``[0, min(interval, PER_TASK_JITTER_CAP))``, which spreads a thousand
  per-task pollers created in the same second over the interval. Jitter only shifts the phase of the
  polls: the completion-to-event delay stays within one interval plus the request time.
* **Deadlines.** A subscriber with an ``end_time`` gets one extra poll of its id at that moment (its
  trigger turns it into the ``timeout`` event); deadlines within :data:`DEADLINE_BATCH_DELAY` of each
  other share that request, and the trigger does not wait for it beyond a grace.
* **Unknown ids.** An id left out of a list answer is fetched alone (``/fetch``); an unknown id is
  delivered as ``None``, so the tracker's ``not_found_grace`` applies. A chunk of one id is always a
  plain fetch.
* **Fallback.** A server without the route (HTTP 404, 405 or 501 on ``list-by-condition``, a 2xx
  answer that is not a task list even after the retries — a web page, say — or a rejection that
  persists down to two ids per request) makes the poller fetch each task on its own from then on;
  this is logged once per poller. A 4xx rejection of a big chunk first halves the chunk
  size (some gateways cap the number of ids).
* **Errors.** Transient errors are retried by the hook's policy as before; a poll that still fails is
  delivered to the affected subscribers as an error observation, and the poller carries on.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import threading
import time
import weakref
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, NamedTuple

from airflow_provider_mjvideo.exceptions import (
    MidjourneyAuthError,
    MidjourneyError,
    MidjourneyNotFoundError,
    MidjourneyRejectedError,
    MidjourneyResponseError,
)
from airflow_provider_mjvideo.waiting import Observation

if TYPE_CHECKING:
    from airflow_provider_mjvideo.connection import ConnectionSettings
    from airflow_provider_mjvideo.hooks.midjourney import MidjourneyAsyncApi, MidjourneyAsyncHook

log = logging.getLogger(__name__)


#: The first tick of a new interval group comes after a random delay below ``min(interval, this)`` seconds.
FIRST_POLL_JITTER_CAP: Final = 0.5
#: With batch polling off, a trigger's first poll comes after a random delay below ``min(interval, this)``.
PER_TASK_JITTER_CAP: Final = 10.0
#: A tick also polls other groups due within this many seconds (and within a quarter of their interval).
COALESCE_WINDOW: Final = 1.0
#: A deadline poll waits this long for other deadlines due at the same moment (never polls before one).
DEADLINE_BATCH_DELAY: Final = 0.05
#: Requests one poller has in flight at once (chunks, and single fetches of missing ids or in fallback).
MAX_CONCURRENT_REQUESTS: Final = 8
#: Seconds the last leaving wait gives the stopped poller to close its HTTP session.
CLOSE_TIMEOUT: Final = 2.0
#: HTTP statuses of a ``list-by-condition`` answer meaning "this server has no such route".
ROUTE_MISSING_STATUSES: Final = frozenset({404, 405, 501})


class PollerKey(NamedTuple):
    """What makes two waits share a poller (besides the event loop): the same server, as the same client."""

    conn_id: str
    base_url: str
    route_prefix: str
    auth_style: str
    key_digest: str
    timeout: float
    list_chunk_size: int

    @classmethod
    def for_settings(cls, settings: ConnectionSettings, list_chunk_size: int | None = None) -> PollerKey:
        """The key of a connection's settings (the API key enters only as a digest)."""
        return cls(
            conn_id=settings.conn_id,
            base_url=settings.base_url,
            route_prefix=settings.route_prefix,
            auth_style=settings.auth_style,
            key_digest=hashlib.sha256(settings.api_key.encode("utf-8")).hexdigest()[:16],
            timeout=settings.timeout,
            list_chunk_size=list_chunk_size or settings.list_chunk_size,
        )


class Subscription:
    """
    One trigger's place in a :class:`SharedTaskPoller`: await :meth:`next` for each new observation.

    Made by :func:`subscribe`; the poller fills it, the trigger drains it.
    """

    __slots__ = ("_queue", "deadline_due", "group", "mj_task_id")

    def __init__(self, mj_task_id: str, group: _Group, deadline_due: float | None) -> None:
        self.mj_task_id = mj_task_id
        self.group = group
        #: Loop time of the extra poll at the trigger's deadline (``None``: none pending).
        self.deadline_due = deadline_due
        self._queue: asyncio.Queue[Observation] = asyncio.Queue()

    async def next(self) -> Observation:
        """Wait for the next observation of this task."""
        return await self._queue.get()

    def deliver(self, observation: Observation) -> None:
        """Hand over one observation (called by the poller)."""
        self._queue.put_nowait(observation)

    def __repr__(self) -> str:
        return f"<Subscription {self.mj_task_id} every {self.group.interval:g} s>"


@dataclass(eq=False)
class _Group:
    """Subscribers that share a poll interval, and the loop time of their next tick."""

    interval: float
    next_due: float
    #: In subscription order (a dict used as an ordered set), so requests list ids in a stable order.
    members: dict[Subscription, None] = field(default_factory=dict)


class SharedTaskPoller:
    """
    Polls the task ids of every subscriber of one connection in one event loop (see the module doc).

    Use :func:`subscribe` rather than this class: it finds or creates the right poller.

    :param key: what the poller is shared by.
    :param hook: an async hook whose settings are loaded; its retry policy applies to every request.
    :param loop: the running event loop the poller belongs to.
    """

    def __init__(self, key: PollerKey, hook: MidjourneyAsyncHook, loop: asyncio.AbstractEventLoop) -> None:
        self.key = key
        self._hook = hook
        self._loop = loop
        self._subs_by_id: dict[str, set[Subscription]] = {}
        self._groups: dict[float, _Group] = {}
        self._deadlines: set[Subscription] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._semaphore = asyncio.Semaphore(MAX_CONCURRENT_REQUESTS)
        #: Whether ``list-by-condition`` is used (``False`` after a fallback to per-task fetches).
        self.list_supported = True
        #: Ids per ``list-by-condition`` request (halved when a server rejects big chunks).
        self.chunk_size = key.list_chunk_size
        #: Requests sent, by kind (``"list"``, ``"fetch"``), for logs and tests.
        self.requests: dict[str, int] = {"list": 0, "fetch": 0}
        #: Completed ticks.
        self.ticks = 0

    # ------------------------------------------------------------------ subscribers

    @property
    def subscriber_count(self) -> int:
        """How many subscriptions are active."""
        return sum(len(subs) for subs in self._subs_by_id.values())

    @property
    def task_ids(self) -> list[str]:
        """The task ids polled for the current subscribers."""
        return list(self._subs_by_id)

    @property
    def closed(self) -> bool:
        """Whether the last subscriber has left (a closed poller takes no new subscribers)."""
        return self._closed

    def add(self, mj_task_id: str, poll_interval: float, end_time: float | None = None) -> Subscription:
        """
        Subscribe a task id: it is polled with the next tick of its interval group.

        :param mj_task_id: the task id.
        :param poll_interval: the subscriber's seconds between polls.
        :param end_time: epoch seconds of the subscriber's deadline (one extra poll then), or ``None``.
        """
        if self._closed:
            raise RuntimeError("this poller has no subscribers left and is closed; subscribe() makes a new one")
        now = self._loop.time()
        group = self._groups.get(poll_interval)
        if group is None:
            jitter = random.uniform(0.0, min(poll_interval, FIRST_POLL_JITTER_CAP))
            group = self._groups[poll_interval] = _Group(poll_interval, now + jitter)
        deadline_due = None if end_time is None else now + max(0.0, end_time - time.time())
        sub = Subscription(mj_task_id, group, deadline_due)
        group.members[sub] = None
        self._subs_by_id.setdefault(mj_task_id, set()).add(sub)
        if deadline_due is not None:
            self._deadlines.add(sub)
        if self._task is None:
            self._task = self._loop.create_task(self._run(), name=f"mjvideo-poller-{self.key.conn_id}")
        self._wake.set()
        return sub

    def remove(self, sub: Subscription) -> asyncio.Task[None] | None:
        """
        Unsubscribe (idempotent); the poller stops and unregisters itself when the last one leaves.

        :returns: the poller's cancelled task when this was the last subscriber (await it to let the
            HTTP session close before the event loop does), else ``None``.
        """
        subs = self._subs_by_id.get(sub.mj_task_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs_by_id[sub.mj_task_id]
        group = sub.group
        group.members.pop(sub, None)
        if not group.members and self._groups.get(group.interval) is group:
            del self._groups[group.interval]
        self._deadlines.discard(sub)
        if not self._subs_by_id:
            return self._close()
        return None

    def _close(self) -> asyncio.Task[None] | None:
        if self._closed:
            return None
        self._closed = True
        _unregister(self)
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            return task
        return None

    # ------------------------------------------------------------------ the loop

    async def _run(self) -> None:
        while self._subs_by_id:
            try:
                async with self._hook.api() as api:
                    await self._serve(api)
                return
            except asyncio.CancelledError:
                raise
            except Exception as err:  # a bug or an unforeseen failure: keep the waits going
                log.exception("Midjourney shared poller for connection %r failed; restarting it", self.key.conn_id)
                failure = MidjourneyResponseError(f"The shared poller failed: {type(err).__name__}: {err}")
                for task_id in list(self._subs_by_id):
                    self._deliver(task_id, failure)
                await asyncio.sleep(1.0)

    async def _serve(self, api: MidjourneyAsyncApi) -> None:
        while self._subs_by_id:
            now = self._loop.time()
            wake_at = self._next_wake()
            if wake_at > now:
                self._wake.clear()
                timer = self._loop.call_at(wake_at, self._wake.set)
                try:
                    await self._wake.wait()
                finally:
                    timer.cancel()
                continue
            due, groups = self._collect_due(now)
            if due:
                await self._poll(api, due)
                self.ticks += 1
                # A tick that overran its interval (a slow server) is not followed by another at once.
                rested = self._loop.time()
                for group in groups:
                    group.next_due = max(group.next_due, rested + group.interval / 2)

    def _next_wake(self) -> float:
        wake = min((group.next_due for group in self._groups.values()), default=float("inf"))
        for sub in self._deadlines:
            if sub.deadline_due is not None and sub.deadline_due + DEADLINE_BATCH_DELAY < wake:
                wake = sub.deadline_due + DEADLINE_BATCH_DELAY
        return wake

    def _collect_due(self, now: float) -> tuple[list[str], list[_Group]]:
        """The ids to poll now and the groups taken (their cadence advanced)."""
        due: dict[str, None] = {}
        taken: list[_Group] = []
        for group in self._groups.values():
            window = min(COALESCE_WINDOW, 0.25 * group.interval)
            if group.next_due <= now + window:
                due.update(dict.fromkeys(sub.mj_task_id for sub in group.members))
                taken.append(group)
                # On time or a little early: keep the cadence. Late (a slow tick): a full interval from now.
                group.next_due = (
                    group.next_due + group.interval if group.next_due >= now - window else now + group.interval
                )
        for sub in [sub for sub in self._deadlines if sub.deadline_due is not None and sub.deadline_due <= now]:
            due[sub.mj_task_id] = None
            sub.deadline_due = None
            self._deadlines.discard(sub)
        return list(due), taken

    # ------------------------------------------------------------------ requests

    async def _poll(self, api: MidjourneyAsyncApi, ids: list[str]) -> None:
        if not self.list_supported or len(ids) == 1:
            await self._fetch_each(api, ids)
            return
        size = self.chunk_size
        await asyncio.gather(*(self._poll_chunk(api, ids[i : i + size]) for i in range(0, len(ids), size)))

    async def _poll_chunk(self, api: MidjourneyAsyncApi, chunk: list[str]) -> None:
        if not self.list_supported or len(chunk) == 1:
            await self._fetch_each(api, chunk)
            return
        try:
            async with self._semaphore:
                self.requests["list"] += 1
                tasks = await api.list_tasks(chunk)
        except MidjourneyError as err:
            if _route_missing(err) or (_is_rejection(err) and len(chunk) <= 2):
                self._fall_back(err)
                await self._fetch_each(api, chunk)
            elif _is_rejection(err):
                await self._shrink_and_retry(api, chunk, err)
            else:
                for task_id in chunk:
                    self._deliver(task_id, err)
            return
        except Exception as err:
            log.exception("Unexpected failure of a list of %d Midjourney task(s)", len(chunk))
            failure = MidjourneyResponseError(f"Listing tasks failed: {type(err).__name__}: {err}")
            for task_id in chunk:
                self._deliver(task_id, failure)
            return
        found = {task.id: task for task in tasks}
        missing = []
        for task_id in chunk:
            task = found.get(task_id)
            if task is None:
                missing.append(task_id)
            else:
                self._deliver(task_id, task)
        if missing:
            # Left out of the answer: unknown (yet), or a server that indexes late. Ask for each alone.
            await self._fetch_each(api, missing)

    async def _shrink_and_retry(self, api: MidjourneyAsyncApi, chunk: list[str], err: MidjourneyError) -> None:
        smaller = max(2, len(chunk) // 2)
        if smaller < self.chunk_size:
            self.chunk_size = smaller
            log.warning(
                "%s rejected list-by-condition with %d ids (%s); sending at most %d ids per request from now on",
                self.key.base_url,
                len(chunk),
                err,
                smaller,
            )
        size = min(smaller, self.chunk_size)
        await asyncio.gather(*(self._poll_chunk(api, chunk[i : i + size]) for i in range(0, len(chunk), size)))

    def _fall_back(self, err: MidjourneyError) -> None:
        if self.list_supported:
            self.list_supported = False
            log.warning(
                "%s does not serve list-by-condition (%s): polling each Midjourney task separately "
                "(one request per task per interval) for connection %r",
                self.key.base_url,
                err,
                self.key.conn_id,
            )

    async def _fetch_each(self, api: MidjourneyAsyncApi, ids: Iterable[str]) -> None:
        await asyncio.gather(*(self._fetch_one(api, task_id) for task_id in ids))

    async def _fetch_one(self, api: MidjourneyAsyncApi, task_id: str) -> None:
        observation: Observation
        try:
            async with self._semaphore:
                self.requests["fetch"] += 1
                observation = await api.find_task(task_id)
        except MidjourneyError as err:
            observation = err
        except Exception as err:
            log.exception("Unexpected failure of a fetch of Midjourney task %s", task_id)
            observation = MidjourneyResponseError(f"Fetching task {task_id} failed: {type(err).__name__}: {err}")
        self._deliver(task_id, observation)

    def _deliver(self, task_id: str, observation: Observation) -> None:
        for sub in self._subs_by_id.get(task_id, ()):
            sub.deliver(observation)

    def __repr__(self) -> str:
        return (
            f"<SharedTaskPoller {self.key.conn_id} {self.key.base_url} subscribers={self.subscriber_count} "
            f"list={'on' if self.list_supported else 'off'}>"
        )


def _route_missing(err: MidjourneyError) -> bool:
    """A 404/405/501, or a 2xx answer that is no task list (a gateway's web page): no such route here."""
    if isinstance(err, MidjourneyAuthError):
        return False
    if err.http_status in ROUTE_MISSING_STATUSES:
        return True
    return isinstance(err, MidjourneyResponseError) and 200 <= (err.http_status or 0) < 300


def _is_rejection(err: MidjourneyError) -> bool:
    """A 4xx refusal of the request itself (not the key): the route, or the chunk's size, is not accepted."""
    return isinstance(err, (MidjourneyRejectedError, MidjourneyNotFoundError)) and not isinstance(
        err, MidjourneyAuthError
    )


# ---------------------------------------------------------------------- the registry

_registry_lock = threading.Lock()
_registry: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[PollerKey, SharedTaskPoller]] = (
    weakref.WeakKeyDictionary()
)


def _poller_for(key: PollerKey, hook: MidjourneyAsyncHook) -> SharedTaskPoller:
    loop = asyncio.get_running_loop()
    with _registry_lock:
        for stale in [other for other in _registry if other.is_closed()]:
            del _registry[stale]
        pollers = _registry.setdefault(loop, {})
        poller = pollers.get(key)
        if poller is None or poller.closed:
            poller = pollers[key] = SharedTaskPoller(key, hook, loop)
        return poller


def _unregister(poller: SharedTaskPoller) -> None:
    with _registry_lock:
        pollers = _registry.get(poller._loop)
        if pollers is None:
            return
        if pollers.get(poller.key) is poller:
            del pollers[poller.key]
        if not pollers:
            del _registry[poller._loop]


def active_pollers(loop: asyncio.AbstractEventLoop | None = None) -> list[SharedTaskPoller]:
    """
    The registered pollers of ``loop``, or of every loop when ``None`` (for tests and diagnostics).

    :param loop: an event loop, or ``None`` for all of them.
    """
    with _registry_lock:
        if loop is not None:
            return list(_registry.get(loop, {}).values())
        return [poller for pollers in _registry.values() for poller in pollers.values()]


@asynccontextmanager
async def subscribe(
    hook: MidjourneyAsyncHook,
    mj_task_id: str,
    *,
    poll_interval: float,
    end_time: float | None = None,
) -> AsyncIterator[Subscription]:
    """
    Join the shared poller of this hook's connection in the running loop for one task id.

    ``async with subscribe(hook, id, poll_interval=10) as sub: observation = await sub.next()``.
    Leaving the block (done, cancelled, or the generator closed) unsubscribes.

    :param hook: the trigger's async hook; its connection is read here (once) if it was not yet.
    :param mj_task_id: the task to observe.
    :param poll_interval: seconds between polls of this id.
    :param end_time: epoch seconds of the wait's deadline (one extra poll then), or ``None``.
    """
    settings = await hook.load_settings()
    poller = _poller_for(PollerKey.for_settings(settings, hook.list_chunk_size), hook)
    sub = poller.add(mj_task_id, float(poll_interval), end_time)
    try:
        yield sub
    finally:
        stopping = poller.remove(sub)
        if stopping is not None:
            # The last wait let the poller close its HTTP session before the loop may close (bounded).
            await asyncio.wait({stopping}, timeout=CLOSE_TIMEOUT)
