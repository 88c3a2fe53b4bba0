"""Named errors.

The class name is the contract: state machines match it in ``Retry``/``Catch`` (Lambda reports the
exception's class name as the error), so never rename one without changing the ASL.
"""

from __future__ import annotations

from typing import Any


class SelfhealError(Exception):
    """Base class. Carries data for the audit row and the notification."""

    retryable = False

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    @property
    def name(self) -> str:
        return type(self).__name__

    def as_dict(self) -> dict[str, Any]:
        return {
            "error": self.name,
            "message": self.message,
            **({"details": self.details} if self.details else {}),
        }


class RetryableError(SelfhealError):
    """A transient failure: the state machine retries it with backoff."""

    retryable = True


class TerminalError(SelfhealError):
    """Retrying cannot help: stop and report."""


class InvalidInput(TerminalError):
    """The runbook input or event is malformed: a field is missing, of the wrong type or unknown."""


class UnknownRunbook(TerminalError):
    """The request names a runbook that does not exist."""


class UnknownResource(TerminalError):
    """The target (or a resource the runbook needs) does not exist."""


class OutsideFence(TerminalError):
    """A resource the runbook would touch is not tagged as managed by selfheal."""


class PreconditionFailed(TerminalError):
    """The world is not in a state where the action is safe (e.g. the standby is not healthy)."""


class VerificationFailed(TerminalError):
    """The action ran but the expected end state was not reached in time."""


class PolicyError(TerminalError):
    """The policy document is invalid."""


class ConfigurationError(TerminalError):
    """The function's configuration (environment) is missing or invalid."""


class LeaseHeld(TerminalError):
    """Another runbook execution holds the lease on this target."""


class LeaseLost(LeaseHeld):
    """This run's lease on the target was taken over by another execution (it had expired): the run
    stops before it acts again."""


class StoppedPartWay(TerminalError):
    """The run was stopped (the kill switch left enforce, the lease was lost) after it had changed the
    target: no skip, a failure that escalates. The target may be half-way; the run's rows say what
    was done and ``before.howToGoBack`` how to undo it."""


class NothingToUndo(TerminalError):
    """An undo input names a run that needs no undo run: it is not stopped, it began no call, or
    the call it was stopped in leaves its target as before or as after."""


class NotThisStacksExecution(TerminalError):
    """The steps function was invoked for an execution that is not a running execution of this
    stack's state machine for the runbook (a forged or stale payload): nothing is written for it."""


class AwsCallFailed(RetryableError):
    """An AWS API call failed for a reason that may pass: throttling, a 5xx, a timeout, even after the
    client's own retries. The state machines retry the step."""


class AwsCallRejected(TerminalError):
    """AWS refused the call for a reason retrying cannot change (its error code is in the details)."""


class AccessDenied(AwsCallRejected):
    """The stack's role may not make this call: IAM (or a resource policy) denied it."""


class InvalidRequest(AwsCallRejected):
    """AWS rejected the call's parameters as invalid."""


class NotApplicable(TerminalError):
    """The runbook has nothing to do for this target (e.g. the instance holds no managed Elastic IP)."""


class SecondaryUnhealthy(PreconditionFailed):
    """The side traffic would move to is not healthy by its own health check: never flip onto it."""


class PrimaryUnhealthy(PreconditionFailed):
    """A failback found the primary not healthy (now, or again after the healthy period): traffic stays."""


class ModeChanged(NotApplicable):
    """The kill switch is not (or no longer) enforce, or cannot be read: the run stops before its
    next mutating call."""


class BudgetExhausted(NotApplicable):
    """The runbook's hourly budget (BudgetPerHour), taken atomically before the first mutating call,
    is spent: the run stops skipped; the first such stop in the hour escalates."""


class TooManyActionsAtOnce(NotApplicable):
    """MaxConcurrentActions runs are acting across the account already. The state machine retries
    for a while (a slot frees when a run finishes); then the run stops skipped."""


class AlreadyRecovering(NotApplicable):
    """AWS (or the Auto Scaling group) is already recovering the target: don't fight it."""


class RecentlyRemediated(NotApplicable):
    """The target cannot be resolved as the signal describes it, and this runbook ran on it within
    the cooldown: the signal is about the fault that run already handled (a second RDS failure event
    after the promotion), not a new failure."""


class GroupBudgetExceeded(TerminalError):
    """Acting would put more of an Auto Scaling group out of service at once than its budget allows."""


class GroupCannotReplace(TerminalError):
    """The Auto Scaling group cannot replace the instance (suspended processes, capacity)."""


class Unauthenticated(TerminalError):
    """A request's proof of who sent it (a signed sts:GetCallerIdentity, selfheal.identity) is
    missing what it needs, was signed for another request, is stale, or STS refused it."""


class ApprovalRefused(TerminalError):
    """An answer to a pending approval was not taken: no such question, already answered, expired,
    for another plan than the one asked about, or from the requester themself. The run keeps waiting
    for a valid answer (or its timeout)."""


class UnverifiedApproval(NotApplicable):
    """The approval came without an authenticated answer (a bare SendTaskSuccess whose output says
    anything it likes) and the stack does not accept those: the run stops skipped, nothing changed."""


class ApprovalExpired(NotApplicable):
    """The approval is older than it may be when the run is about to act: nothing changed; ask again."""
