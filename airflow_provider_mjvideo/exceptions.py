"""Every error this provider raises.

Two families matter to callers:

* :class:`MidjourneyPermanentError` subclasses are also :class:`AirflowFailException`: Airflow fails
  the task without using its retries, because trying again cannot help (bad input, bad key, banned
  prompt, a video that failed on Midjourney's side).
* :class:`MidjourneyTransientError` subclasses are retried inside the hook with backoff. When the
  hook's own retries are exhausted they reach Airflow as ordinary errors, so the task's ``retries``
  apply.

Every message names the HTTP status, the server's code and its description (shortened), and never
the API key: the hook builds messages only from the response status and body.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException

#: At most this many characters of a server's text go into a message or a log line.
MAX_SERVER_TEXT = 300
_SHORTENED: Final = re.compile(r"… \[\d+ more chars\]")


def shorten(text: str | None, limit: int = MAX_SERVER_TEXT) -> str:
    """Return ``text`` on one line, cut to ``limit`` characters with a marker saying how much was cut."""
    if not text:
        return ""
    one_line = " ".join(str(text).split())
    if len(one_line) <= limit or _SHORTENED.fullmatch(one_line[limit:]):  # already shortened: keep it as it is
        return one_line
    return f"{one_line[:limit]}… [{len(one_line) - limit} more chars]"


class MidjourneyError(AirflowException):
    """
    Base class of every error raised by this provider.

    :param message: what went wrong, in words.
    :param http_status: the HTTP status of the server's answer, when there was one.
    :param code: the ``code`` field of the server's answer, when it had one.
    :param description: the server's ``description``/``message`` text, when it had one.
    """

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        code: Any = None,
        description: str | None = None,
    ) -> None:
        self.http_status = http_status
        self.code = code
        self.description = shorten(description) if description else None
        details = []
        if http_status is not None:
            details.append(f"HTTP {http_status}")
        if code is not None:
            details.append(f"code {code}")
        if self.description:
            details.append(f"description: {self.description!r}")
        self.message = message
        super().__init__(f"{message} ({', '.join(details)})" if details else message)

    #: Attributes of the subclass that :meth:`to_dict` carries besides the common ones.
    event_fields: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """
        The error as JSON values (trigger events carry only JSON): its class name, message and fields.

        :func:`error_from_dict` rebuilds it, with the same class, text and attributes.
        """
        data: dict[str, Any] = {
            "type": type(self).__name__,
            "message": self.message,
            "http_status": self.http_status,
            "code": self.code
            if isinstance(self.code, (str, int, float, bool)) or self.code is None
            else str(self.code),
            "description": self.description,
        }
        for name in self.event_fields:
            data[name] = getattr(self, name, None)
        return data


class MidjourneyPermanentError(MidjourneyError, AirflowFailException):
    """An error that retrying cannot fix; Airflow fails the task without retries."""


class MidjourneyValidationError(MidjourneyPermanentError, ValueError):
    """
    A parameter is invalid; raised before any request is sent.

    :param parameter: the name of the offending parameter.
    :param problem: what is wrong with it.
    """

    event_fields = ("parameter", "problem")

    def __init__(self, parameter: str, problem: str) -> None:
        self.parameter = parameter
        self.problem = problem
        super().__init__(f"Invalid parameter {parameter!r}: {problem}")


class MidjourneyConfigurationError(MidjourneyPermanentError):
    """The Airflow connection is missing or misconfigured (no host, unknown auth style…)."""


class MidjourneyAuthError(MidjourneyPermanentError):
    """The server refused the API key (HTTP 401/403)."""


class MidjourneyNotFoundError(MidjourneyPermanentError):
    """The task (or the parent of an extend) does not exist on the server (HTTP 404, code 3)."""


class MidjourneyRejectedError(MidjourneyPermanentError):
    """The server refused the request as invalid (HTTP 400, code 4, or another 4xx)."""


class MidjourneyBannedPromptError(MidjourneyRejectedError):
    """
    The prompt contains a banned word (code 24).

    :param banned_word: the word the server named, if any.
    """

    event_fields = ("banned_word",)

    def __init__(self, message: str, *, banned_word: str | None = None, **kwargs: Any) -> None:
        self.banned_word = banned_word
        if banned_word:
            message = f"{message}; banned word: {banned_word!r}"
        super().__init__(message, **kwargs)


class MidjourneyTaskFailedError(MidjourneyPermanentError):
    """
    The Midjourney task ended without a video: FAILURE, CANCEL, or MODAL (needs a manual confirm).

    :param mj_task_id: the Midjourney task id.
    :param status: the task's final status.
    """

    event_fields = ("mj_task_id", "status")

    def __init__(self, message: str, *, mj_task_id: str, status: str) -> None:
        self.mj_task_id = mj_task_id
        self.status = status
        super().__init__(message)


class MidjourneyApiError(MidjourneyError):
    """
    The server answered with an error that is neither clearly permanent nor safe to retry at once.

    The hook does not retry it; Airflow's task retries may.
    """


class MidjourneySubmitOutcomeUnknownError(MidjourneyError):
    """
    A submission may or may not have been accepted (timeout, dropped connection, 5xx, garbled answer).

    The hook never resends a submission after such a failure, because a second request could pay
    for a second video. The midjourney-proxy API has no idempotency key, so this cannot be settled
    automatically: check the server's task list before retrying by hand.
    """


class MidjourneyWaitTimeoutError(MidjourneyError):
    """
    Waiting for a task took longer than the timeout. The remote task may still be running.

    :param mj_task_id: the Midjourney task id.
    """

    event_fields = ("mj_task_id",)

    def __init__(self, message: str, *, mj_task_id: str) -> None:
        self.mj_task_id = mj_task_id
        super().__init__(message)


class MidjourneyTransientError(MidjourneyError):
    """
    A failure that may pass: the hook retries it with backoff.

    :param safe_to_resend: whether the server certainly did not act on the request, so that even a
        submission may be sent again (connection refused, HTTP 429, queue full).
    :param retry_after: seconds the server asked us to wait (``Retry-After``), if it said.
    """

    event_fields = ("safe_to_resend", "retry_after")

    def __init__(
        self,
        message: str,
        *,
        safe_to_resend: bool = False,
        retry_after: float | None = None,
        **kwargs: Any,
    ) -> None:
        self.safe_to_resend = safe_to_resend
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class MidjourneyRateLimitError(MidjourneyTransientError):
    """HTTP 429 or code 30: the server or gateway asks us to slow down."""


class MidjourneyQueueFullError(MidjourneyTransientError):
    """Code 23 (or trueai's code 9 "queue full"): nothing was accepted; try again later."""


class MidjourneyServerError(MidjourneyTransientError):
    """HTTP 5xx from the server or a gateway in front of it."""


class MidjourneyConnectionError(MidjourneyTransientError):
    """The request failed on the network: refused, reset, dropped, or timed out."""


class MidjourneyResponseError(MidjourneyTransientError):
    """The server's answer could not be understood (not JSON, truncated, wrong shape)."""


# -- downloads of finished clips (DownloadVideoOperator) --


class MidjourneyDownloadError(MidjourneyTransientError):
    """
    A clip download failed in a way that may pass: network error, connection dropped mid-file, body
    shorter than its ``Content-Length``, HTTP 408/429/5xx.

    Retried from scratch a bounded number of times; then it reaches Airflow as an ordinary error, so
    the task's ``retries`` apply. No partial file is left under the final name.
    """


class MidjourneyMediaUnavailableError(MidjourneyPermanentError):
    """
    The media server refused a clip with a 4xx status (403/404/410: an expired or private URL).

    :param index: the clip index.
    """

    event_fields = ("index",)

    def __init__(self, message: str, *, index: int | None = None, **kwargs: Any) -> None:
        self.index = index
        super().__init__(message, **kwargs)


class MidjourneyMediaTooLargeError(MidjourneyPermanentError):
    """A clip is larger than ``max_file_bytes`` (announced by ``Content-Length`` or counted while reading)."""


class MidjourneyMediaContentError(MidjourneyPermanentError):
    """A clip's ``Content-Type`` (or its first bytes) is not a video: an HTML error page, an image…"""


class MidjourneyStorageReadError(MidjourneyError):
    """
    A stored file given as a picture (``image``, ``images``…) could not be read: the store refused or failed
    (permissions, credentials, network). Not permanent: Airflow's task retries apply, and nothing was submitted.

    :param parameter: the parameter the file was given in.
    """

    event_fields = ("parameter",)

    def __init__(self, message: str, *, parameter: str, **kwargs: Any) -> None:
        self.parameter = parameter
        super().__init__(message, **kwargs)


class MidjourneyTaskNotReadyError(MidjourneyError):
    """
    The task has no clips to download yet (still running, or ``SUCCESS`` without URLs so far).

    Not permanent: a later try may find the clips. Put a ``MidjourneyTaskSensor`` before the download.
    """


#: Every error class of this module by name: what :func:`error_from_dict` may rebuild (an explicit list,
#: so that an event can never name an arbitrary class).
ERROR_CLASSES: Final[Mapping[str, type[MidjourneyError]]] = MappingProxyType(
    {
        cls.__name__: cls
        for cls in (
            MidjourneyError,
            MidjourneyPermanentError,
            MidjourneyValidationError,
            MidjourneyConfigurationError,
            MidjourneyAuthError,
            MidjourneyNotFoundError,
            MidjourneyRejectedError,
            MidjourneyBannedPromptError,
            MidjourneyTaskFailedError,
            MidjourneyApiError,
            MidjourneySubmitOutcomeUnknownError,
            MidjourneyWaitTimeoutError,
            MidjourneyTransientError,
            MidjourneyRateLimitError,
            MidjourneyQueueFullError,
            MidjourneyServerError,
            MidjourneyConnectionError,
            MidjourneyResponseError,
            MidjourneyDownloadError,
            MidjourneyMediaUnavailableError,
            MidjourneyMediaTooLargeError,
            MidjourneyMediaContentError,
            MidjourneyStorageReadError,
            MidjourneyTaskNotReadyError,
        )
    }
)


def error_from_dict(data: Mapping[str, Any], *, text: str | None = None) -> MidjourneyError:
    """
    Rebuild an error from :meth:`MidjourneyError.to_dict` (or from a bare ``{"type", "message"}``).

    The class comes from :data:`ERROR_CLASSES` (an unknown name gives a plain :class:`MidjourneyError`);
    every field the dict carries is restored, missing fields are ``None``.

    :param data: the error's dict from a trigger event.
    :param text: the error's whole text, when the receiver words it (a wait's message that already quotes the
        error); by default the text is rebuilt from the message and the fields, as the error had it.
    """
    cls = ERROR_CLASSES.get(str(data.get("type") or ""), MidjourneyError)
    error = cls.__new__(cls)
    common = {"http_status": data.get("http_status"), "code": data.get("code"), "description": data.get("description")}
    if text is None:
        MidjourneyError.__init__(error, str(data.get("message") or cls.__name__), **common)
    else:
        MidjourneyError.__init__(error, text)
        error.http_status, error.code, error.description = common["http_status"], common["code"], common["description"]
    for name in cls.event_fields:
        setattr(error, name, data.get(name))
    return error
