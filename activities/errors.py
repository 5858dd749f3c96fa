"""The one error taxonomy shared by every action: business errors fail at once, transient ones retry."""

from __future__ import annotations

from datetime import timedelta

from temporalio.exceptions import ApplicationError, ApplicationErrorCategory


class BusinessError(Exception):
    """A failure retrying cannot fix (validation, 4xx, a limit reached): the step fails at once."""

    type = "BusinessError"

    def __init__(self, message: str, *, type: str | None = None):
        super().__init__(message)
        if type is not None:
            self.type = type

    def to_application_error(self) -> ApplicationError:
        # BENIGN: an expected outcome (the step is recorded as failed), not a worker fault to log loudly.
        return ApplicationError(str(self), type=self.type, non_retryable=True, category=ApplicationErrorCategory.BENIGN)


class ValidationError(BusinessError):
    type = "ValidationError"


class MergeFieldMissing(BusinessError):
    type = "MergeFieldMissing"


class RecordNotFound(BusinessError):
    type = "RecordNotFound"


class OpenDealLimitReached(BusinessError):
    type = "OpenDealLimitReached"


class NoSyncedMailbox(BusinessError):
    type = "NoSyncedMailbox"


class ConnectionUnusable(BusinessError):
    """The company has no usable connection for an integration (missing, ambiguous, undecryptable)."""

    type = "ConnectionUnusable"


class ProviderRejected(BusinessError):
    """An outside service refused the request (a 4xx); `type` is the provider's error code when it has one."""

    type = "ProviderRejected"


class TransientError(Exception):
    """A fault worth retrying (network, 5xx, rate limit). `retry_after` honours a provider's Retry-After."""

    type = "TransientError"

    def __init__(self, message: str, *, retry_after: float | None = None, type: str | None = None):
        super().__init__(message)
        self.retry_after = retry_after
        if type is not None:
            self.type = type

    def to_application_error(self) -> ApplicationError:
        delay = timedelta(seconds=self.retry_after) if self.retry_after else None
        return ApplicationError(str(self), type=self.type, non_retryable=False, next_retry_delay=delay)


#: Declared next to every action call: Temporal never retries these.
NON_RETRYABLE_TYPES = [
    cls.type for cls in (BusinessError, ValidationError, MergeFieldMissing, RecordNotFound,
                         OpenDealLimitReached, NoSyncedMailbox, ConnectionUnusable, ProviderRejected)
]
