"""
What happens to the paid remote task when Airflow stops waiting for it: the one place that decides and cancels.

Two questions, each answered here only:

* **May we cancel?** A worker-side stop (``on_kill`` of an operator or sensor, a wait that timed out)
  always may, when ``cancel_on_stop`` is on. A trigger's ``on_kill`` is different: Airflow 3.3's
  triggerer calls it for *every* trigger it stops running with its "user action" message, including
  triggers it merely lost to another triggerer (a triggerer that stalled past
  ``[triggerer] triggerer_health_check_threshold`` and woke up). So the trigger asks Airflow for the
  task instance's current state (:func:`task_instance_state`, through the triggerer's supervisor
  channel) and :func:`kill_verdict` cancels only when a person ended the task instance: marked success or
  failed (it is finished) or deleted it with its run (it is gone). A task instance that is deferred, cleared
  or otherwise on its way to a new try keeps its video: the new try reattaches to it through
  ``task_state_store`` (a sensor waits for the same id again), so cancelling would only make it pay twice —
  and whether a cleared try had already deferred again when ``on_kill`` asked would decide the outcome by
  timing. When the state cannot be read, nothing is cancelled; and a remote task that has already ended is
  left alone (:func:`acancel_after_stop` looks first), because a task instance also finishes by itself when
  another triggerer saw its video finish.
* **How?** :func:`cancel_after_stop` (sync hook) and :func:`acancel_after_stop` (async hook) send one
  best-effort cancel, log the outcome, and never raise: a stop must not fail because the API is down.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeVar

from airflow.utils.state import State

from airflow_provider_mjvideo.exceptions import MidjourneyError

if TYPE_CHECKING:
    from airflow_provider_mjvideo.hooks.midjourney import MidjourneyHook
    from airflow_provider_mjvideo.retrying import TaskLogger

#: The task-instance state in which a wait is still wanted: a trigger stopped then was moved, not killed.
STILL_DEFERRED: Final = "deferred"
#: Task-instance states that end its tries (Airflow's own ``State.finished``): a person marked it, or it finished;
#: nothing will wait for the video.
FINISHED_STATES: Final = frozenset(str(getattr(state, "value", state)) for state in State.finished)
T = TypeVar("T")

#: Parts of ``[triggerer] on_kill_timeout`` (30 s by default) that a trigger's ``on_kill`` may use: for the state
#: look-up, and in all. The look-up gets half: a triggerer's supervisor answers its first look-up only after it has
#: built its in-process execution API, and one that has just woken from a stall first catches up on heartbeats
#: (5 to 12 s seen on a busy 2-core machine). No answer in time means "do not cancel".
STATE_LOOKUP_SHARE: Final = 0.5
ON_KILL_SHARE: Final = 0.8
#: Seconds of ``[triggerer] on_kill_timeout`` when Airflow's configuration does not say.
DEFAULT_ON_KILL_TIMEOUT: Final = 30.0
#: Seconds the look-up may take when no budget is given (outside a triggerer's on_kill).
STATE_LOOKUP_TIMEOUT: Final = STATE_LOOKUP_SHARE * DEFAULT_ON_KILL_TIMEOUT
#: Attempts of the cancel request from a trigger (the first included) and their backoff scale.
ON_KILL_CANCEL_ATTEMPTS: Final = 2
ON_KILL_RETRY_DELAY: Final = 0.5


def on_kill_limits() -> tuple[float, float]:
    """
    ``(look-up timeout, whole budget)`` in seconds for a trigger's ``on_kill``, from ``[triggerer] on_kill_timeout``.

    Airflow stops waiting for ``on_kill`` at that timeout; staying within a share of it leaves the cancel's log
    line and the triggerer's own bookkeeping room.
    """
    from airflow.providers.common.compat.sdk import conf

    try:
        limit = conf.getfloat("triggerer", "on_kill_timeout", fallback=DEFAULT_ON_KILL_TIMEOUT)
    except (TypeError, ValueError):
        limit = DEFAULT_ON_KILL_TIMEOUT
    limit = limit if limit > 0 else DEFAULT_ON_KILL_TIMEOUT
    return STATE_LOOKUP_SHARE * limit, ON_KILL_SHARE * limit


@dataclass(frozen=True)
class StateLookup:
    """
    What Airflow said about a task instance.

    :param found: the task instance exists (``False``: it, or its DAG run, was deleted).
    :param state: its state (``None``: no state, e.g. just cleared).
    :param error: why the state could not be read (then ``found`` and ``state`` mean nothing).
    """

    found: bool = False
    state: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class KillVerdict:
    """
    Whether a trigger's ``on_kill`` cancels the remote task, and why (for the log).

    :param cancel: send the cancel.
    :param reason: a sentence naming what Airflow said.
    :param warn: log at WARNING (the state could not be read), else INFO.
    """

    cancel: bool
    reason: str
    warn: bool = False


def kill_verdict(lookup: StateLookup) -> KillVerdict:
    """
    Decide whether a person ended the deferred task (cancel) or a wait for its video goes on (keep).

    :param lookup: the task instance's state as :func:`task_instance_state` read it.
    """
    if lookup.error is not None:
        return KillVerdict(
            False, f"cannot tell whether a person stopped the task instance ({lookup.error}); not cancelling", True
        )
    if not lookup.found:
        return KillVerdict(True, "the task instance no longer exists (its DAG run was deleted)")
    if lookup.state in FINISHED_STATES:
        return KillVerdict(True, f"the task instance is now {lookup.state}: a person ended it, or it finished")
    if lookup.state == STILL_DEFERRED:
        return KillVerdict(
            False,
            "the task instance is still deferred: the trigger moved to another triggerer or this one is stopping",
        )
    shown = lookup.state or "cleared (no state)"
    return KillVerdict(False, f"the task instance is {shown}: its next try reattaches to the video")


def _state_key(task_id: str, map_index: int | None) -> str:
    # The Task Execution API names a mapped task instance "<task_id>_<map_index>" in its state map.
    return task_id if map_index is None or map_index < 0 else f"{task_id}_{map_index}"


def states_lookup(answer: Mapping[str, Any], run_id: str, task_id: str, map_index: int | None) -> StateLookup:
    """
    Read one task instance out of the ``{run_id: {task key: state}}`` map that Airflow's task-states look-up returns.

    :param answer: the look-up's result.
    :param run_id: the DAG run.
    :param task_id: the task.
    :param map_index: the map index (``-1`` or ``None`` when not mapped).
    """
    run_states = answer.get(run_id)
    key = _state_key(task_id, map_index)
    if not isinstance(run_states, Mapping) or key not in run_states:
        return StateLookup(found=False)
    state = run_states[key]
    return StateLookup(found=True, state=None if state is None else str(getattr(state, "value", state)))


async def task_instance_state(ti: Any, timeout: float = STATE_LOOKUP_TIMEOUT) -> StateLookup:
    """
    Ask Airflow (through the triggerer's supervisor channel) for the current state of a trigger's task instance.

    Uses the task SDK's task-state look-up, which the triggerer serves for its triggers (Airflow 3.x). It is a
    blocking call, so it runs in a thread, bounded by ``timeout``. Never raises: failures come back as
    :attr:`StateLookup.error`.

    :param ti: the trigger's ``task_instance`` (has ``dag_id``, ``run_id``, ``task_id``, ``map_index``).
    :param timeout: seconds to wait for the answer.
    """
    if ti is None or not all(getattr(ti, name, None) for name in ("dag_id", "run_id", "task_id")):
        return StateLookup(error="the trigger does not know its task instance")
    try:
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

        answer = await asyncio.wait_for(
            asyncio.to_thread(
                RuntimeTaskInstance.get_task_states,
                dag_id=ti.dag_id,
                map_index=ti.map_index,
                task_ids=[ti.task_id],
                run_ids=[ti.run_id],
            ),
            timeout,
        )
    except asyncio.TimeoutError:
        return StateLookup(error=f"no answer from Airflow within {timeout:g} s")
    except Exception as err:  # any failure of the channel means "cannot tell", never "cancel"
        return StateLookup(error=f"{type(err).__name__}: {err}")
    if not isinstance(answer, Mapping):
        return StateLookup(error=f"unexpected answer {type(answer).__name__}")
    return states_lookup(answer, ti.run_id, ti.task_id, ti.map_index)


async def outlast_cancellation(work: Awaitable[T]) -> T:
    """
    Await ``work`` to its end even when the awaiting task is cancelled meanwhile; ``work`` must bound itself.

    Airflow 3.3's triggerer cancels a trigger again on every loop (about once a second) while its ``on_kill``
    runs — the trigger stays in its cancel queue until it has finished —, so an ``on_kill`` that needs more
    than a second (asking Airflow for the task instance's state, sending the cancel) would be cut short every
    time. The work runs in a task of its own, shielded; cancellations of the caller are absorbed until it ends.

    :param work: the bounded work (a coroutine or future).
    """
    task = asyncio.ensure_future(work)
    while True:
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():
                return task.result()


def cancel_after_stop(
    hook: MidjourneyHook, mj_task_id: str, why: str, *, enabled: bool, logger: TaskLogger
) -> bool | None:
    """
    Best-effort cancel of a remote task after a worker-side stop; never raises.

    :param hook: the sync hook.
    :param mj_task_id: the task to cancel.
    :param why: what stopped the wait, for the log ("its wait timed out").
    :param enabled: the operator's ``cancel_on_stop``.
    :param logger: where to log.
    :returns: whether the server accepted the cancel; ``None`` when none was sent or it failed.
    """
    if not enabled:
        logger.info("Leaving Midjourney task %s running after %s (cancel_on_stop=False)", mj_task_id, why)
        return None
    try:
        accepted = hook.cancel_task(mj_task_id)
    except MidjourneyError as err:
        logger.warning("Could not cancel Midjourney task %s after %s: %s", mj_task_id, why, err)
        return None
    logger.info("Cancel of Midjourney task %s after %s: %s", mj_task_id, why, "accepted" if accepted else "refused")
    return accepted


async def acancel_after_stop(
    midjourney_conn_id: str, mj_task_id: str, why: str, *, logger: TaskLogger, budget: float
) -> bool | None:
    """
    Best-effort cancel from a trigger, bounded by ``budget`` seconds; never raises (cancellation passes through).

    The task is fetched first and left alone when it has already ended: a task instance that is no longer
    deferred may also have moved on by itself (another triggerer saw the video finish while this one was
    stalled), and a finished video is nothing to cancel.

    :param midjourney_conn_id: the connection.
    :param mj_task_id: the task to cancel.
    :param why: what stopped the wait, for the log.
    :param logger: where to log.
    :param budget: seconds for the whole cancel, retries included.
    :returns: whether the server accepted the cancel; ``None`` when none was sent, it failed or ran out of time.
    """
    from airflow_provider_mjvideo.hooks.midjourney import MidjourneyAsyncHook

    started = time.monotonic()
    try:
        hook = MidjourneyAsyncHook(
            midjourney_conn_id, retry_limit=ON_KILL_CANCEL_ATTEMPTS, retry_delay=ON_KILL_RETRY_DELAY
        )

        async def cancel() -> bool | None:
            async with hook.api() as api:
                task = await api.find_task(mj_task_id)
                if task is not None and task.status.is_terminal:
                    logger.info(
                        "Midjourney task %s already ended %s: nothing to cancel after %s",
                        mj_task_id,
                        task.status.value,
                        why,
                    )
                    return None
                return await api.cancel_task(mj_task_id)

        accepted = await asyncio.wait_for(cancel(), budget)
    except asyncio.TimeoutError:
        logger.warning("Could not cancel Midjourney task %s after %s: no answer within %.0f s", mj_task_id, why, budget)
        return None
    except Exception as err:  # a stop must never fail because the API is down or misconfigured
        logger.warning("Could not cancel Midjourney task %s after %s: %s", mj_task_id, why, err)
        return None
    if accepted is not None:
        logger.info(
            "Cancel of Midjourney task %s after %s: %s (%.1f s)",
            mj_task_id,
            why,
            "accepted" if accepted else "refused",
            time.monotonic() - started,
        )
    return accepted
