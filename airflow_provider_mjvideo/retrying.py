"""The hook's backoff policy: which failures are retried, how long to wait, when to give up (tenacity)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import tenacity

from airflow_provider_mjvideo.exceptions import MidjourneyTransientError
from airflow_provider_mjvideo.validation import check_positive_number

#: The longest ``Retry-After`` the hook waits out; a server asking for more is retried after this.
RETRY_AFTER_CEILING = 300.0


class TaskLogger(Protocol):
    """What the provider logs through: a ``logging.Logger``, or an Airflow hook's or task's ``self.log``."""

    def info(self, msg: Any, /, *args: Any) -> Any: ...

    def warning(self, msg: Any, /, *args: Any) -> Any: ...


@dataclass(frozen=True)
class RetryPolicy:
    """
    Capped exponential backoff with full jitter; a server's ``Retry-After`` wins when it sends one.

    :param max_attempts: total attempts per request, the first included.
    :param initial_delay: the backoff scale in seconds (the first wait is random in ``[0, initial_delay]``).
    :param max_delay: the cap of one backoff wait, in seconds. A ``Retry-After`` is honoured beyond it,
        up to :data:`RETRY_AFTER_CEILING`.
    """

    max_attempts: int = 6
    initial_delay: float = 1.0
    max_delay: float = 30.0

    def __post_init__(self) -> None:
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            from airflow_provider_mjvideo.exceptions import MidjourneyValidationError

            raise MidjourneyValidationError("retry_limit", f"must be an integer >= 1, got {self.max_attempts!r}")
        # Keep the checked seconds, not what was given ("0.5" or a timedelta would break tenacity's arithmetic).
        object.__setattr__(self, "initial_delay", check_positive_number("retry_delay", self.initial_delay))
        object.__setattr__(self, "max_delay", check_positive_number("retry_max_delay", self.max_delay))

    def _wait(self, retry_state: tenacity.RetryCallState) -> float:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            return min(float(retry_after), RETRY_AFTER_CEILING)
        jitter = tenacity.wait_random_exponential(multiplier=self.initial_delay, max=self.max_delay)
        return float(jitter(retry_state))

    def tenacity_kwargs(self, *, resend_safe_only: bool, logger: TaskLogger, what: str) -> dict[str, Any]:
        """
        Return keyword arguments for ``tenacity.Retrying`` or ``tenacity.AsyncRetrying``.

        :param resend_safe_only: retry only failures after which the server certainly did nothing
            (used for submissions, which cost money).
        :param logger: where to log each retry.
        :param what: the request, for log lines.
        """

        def should_retry(error: BaseException) -> bool:
            if not isinstance(error, MidjourneyTransientError):
                return False
            return error.safe_to_resend or not resend_safe_only

        def before_sleep(retry_state: tenacity.RetryCallState) -> None:
            outcome = retry_state.outcome
            error = outcome.exception() if outcome is not None else None
            wait = retry_state.next_action.sleep if retry_state.next_action else 0.0
            logger.warning(
                "%s failed (attempt %d of %d): %s; retrying in %.2f s",
                what,
                retry_state.attempt_number,
                self.max_attempts,
                error,
                wait,
            )

        return {
            "stop": tenacity.stop_after_attempt(self.max_attempts),
            "wait": self._wait,
            "retry": tenacity.retry_if_exception(should_retry),
            "before_sleep": before_sleep,
            "reraise": True,
        }
