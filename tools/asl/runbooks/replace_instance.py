"""replace-instance: three paths, chosen by the plan. A group member is marked unhealthy and the group
replaces it; a standalone EBS-backed instance is stopped and started (and replaced when that does not
heal it); otherwise a replacement is launched, registered in each target group, given the Elastic IP,
and only then is the old one deregistered and retired. A failure before that undoes the replacement."""

from __future__ import annotations

from selfheal.errors import VerificationFailed
from selfheal.runbooks import replace_instance as rb
from tools.asl.frame import FAILED, SUCCEEDED, VERIFIED, Workflow, nothing_to_undo
from tools.asl.idioms import SKIPPED, STOPS, Call, Flow, all_of, catch, equals, is_true

PLAN = "$.guard.plan"
REPLACEMENT = {"replacement": "$.replacement.instanceId"}
TAKE_OVER = "Can a replacement take over?"
UNDO = "Undo: was the Elastic IP moved?"
UNDO_REGISTRATIONS = "Undo: is the replacement in the target group?"
STATUS = "aws-sdk:ec2:describeInstanceStatus"
TARGET_HEALTH = "aws-sdk:elasticloadbalancingv2:describeTargetHealth"


def _healthy(status: str) -> dict[str, object]:
    return all_of(
        equals(f"{status}.InstanceState.Name", "running"),
        equals(f"{status}.SystemStatus.Status", "ok"),
        equals(f"{status}.InstanceStatus.Status", "ok"),
    )


def _status(f: Flow, name: str, instance: str, next_state: str, on_error: str) -> None:
    f.describe(
        name,
        STATUS,
        {"InstanceIds.$": f"States.Array({instance})", "IncludeAllInstances": True},
        {"status.$": "States.ArrayGetItem($.InstanceStatuses, 0)"},
        next_state=next_state,
        on_error=on_error,
    )


MARK = Call(
    rb.MARK_UNHEALTHY,
    intent="Record: about to mark the instance unhealthy",
    task="Mark the instance unhealthy",
    done="Record: the instance was marked unhealthy",
    failed="Record: marking unhealthy failed",
)
STOP = Call(
    rb.STOP,
    intent="Record: about to stop the instance",
    task="Stop the instance",
    done="Record: the stop was accepted",
    failed="Record: the stop failed",
    result={"stopping.$": "$.StoppingInstances"},
)
START = Call(
    rb.START,
    intent="Record: about to start the instance",
    task="Start the instance",
    done="Record: the start was accepted",
    failed="Record: the start failed",
    result={"starting.$": "$.StartingInstances"},
)
LAUNCH = Call(
    rb.LAUNCH,
    intent="Record: about to launch the replacement",
    shape_choice="How is the replacement launched?",
    task={
        "template": "Launch the replacement from its launch template",
        "image": "Launch the replacement from its image",
        "image-profile": "Launch the replacement from its image, with its instance profile",
        "image-key": "Launch the replacement from its image, with its key pair",
        "image-profile-key": "Launch the replacement from its image, with its instance profile and key pair",
    },
    done="Record: the replacement was launched",
    failed="Record: the launch failed",
    result={"instanceId.$": "States.ArrayGetItem($.Instances[*].InstanceId, 0)"},
    result_path="$.replacement",
)
REGISTER = Call(
    rb.REGISTER,
    intent="Record: about to register the replacement",
    task="Register the replacement",
    done="Record: the replacement was registered",
    failed="Record: the registration failed",
)
ASSOCIATE = Call(
    rb.ASSOCIATE,
    intent="Record: about to move the Elastic IP",
    task="Move the Elastic IP to the replacement",
    done="Record: the Elastic IP was moved",
    failed="Record: the Elastic IP move failed",
    result={"associationId.$": "$.AssociationId"},
)
DEREGISTER = Call(
    rb.DEREGISTER,
    intent="Record: about to deregister the old instance",
    task="Deregister the old instance",
    done="Record: the old instance was deregistered",
    failed="Record: deregistering the old instance failed",
)
RETIRE_TERMINATE = Call(
    rb.RETIRE_TERMINATE,
    intent="Record: about to terminate the old instance",
    task="Terminate the old instance",
    done="Record: the old instance was terminated",
    failed="Record: retiring the old instance failed (terminate)",
    result={"retired.$": "$.TerminatingInstances"},
)
RETIRE_STOP = Call(
    rb.RETIRE_STOP,
    intent="Record: about to stop the old instance",
    task="Stop the old instance",
    done="Record: the old instance was stopped",
    failed="Record: retiring the old instance failed (stop)",
    result={"retired.$": "$.StoppingInstances"},
)
MOVE_BACK = Call(
    rb.MOVE_BACK,
    intent="Record: about to move the Elastic IP back",
    task="Move the Elastic IP back to the old instance",
    done="Record: the Elastic IP was moved back",
    failed="Record: moving the Elastic IP back failed",
    result={"associationId.$": "$.AssociationId"},
    result_path="$.compensated",
    error_path="$.compensationError",
)
DEREGISTER_REPLACEMENT = Call(
    rb.DEREGISTER_REPLACEMENT,
    intent="Record: about to deregister the replacement",
    task="Deregister the replacement",
    done="Record: the replacement was deregistered",
    failed="Record: deregistering the replacement failed",
    result_path="$.compensated",
    error_path="$.compensationError",
)
TERMINATE_REPLACEMENT = Call(
    rb.TERMINATE_REPLACEMENT,
    intent="Record: about to terminate the replacement",
    task="Terminate the replacement",
    done="Record: the replacement was terminated",
    failed="Record: compensation failed",
    result={"terminating.$": "$.TerminatingInstances"},
    result_path="$.compensated",
    error_path="$.compensationError",
)


def _group_member(f: Flow) -> None:
    """Mark it unhealthy; the group replaces it. Verified when the group is whole again without it."""
    f.call(MARK, next_state="Start counting group checks", on_error=FAILED)
    f.poll(
        start="Start counting group checks",
        describe="Describe the group",
        check="Is the group whole again?",
        done=[
            (
                all_of(
                    {"Variable": "$.verify.oldInstancePresent", "BooleanEquals": False},
                    {"Variable": "$.verify.members", "NumericEqualsPath": "$.verify.desiredCapacity"},
                    {"Variable": "$.verify.lifecycleKinds", "NumericEquals": 1},
                    is_true("$.verify.anyInService"),
                    {"Variable": "$.verify.healthKinds", "NumericEquals": 1},
                    is_true("$.verify.anyHealthy"),
                ),
                VERIFIED,
            )
        ],
        give_up="The group did not replace the instance",
        wait="Wait before checking the group again",
        count="Count the group check",
        on_error=FAILED,
    )
    f.describe(
        "Describe the group",
        "aws-sdk:autoscaling:describeAutoScalingGroups",
        {"AutoScalingGroupNames.$": f"States.Array({PLAN}.autoScalingGroupName)"},
        {"group.$": "States.ArrayGetItem($.AutoScalingGroups, 0)"},
        next_state="List the group's members",
        on_error=FAILED,
    )
    f.pass_(
        "List the group's members",
        next_state="Summarise the group",
        comment="One wildcard per path: an empty group gives [] (never a filter expression: its empty result"
        " is an error in some interpreters).",
        parameters={
            "desired.$": "$.verify.group.DesiredCapacity",
            "ids.$": "$.verify.group.Instances[*].InstanceId",
            "states.$": "$.verify.group.Instances[*].LifecycleState",
            "health.$": "$.verify.group.Instances[*].HealthStatus",
        },
        result_path="$.members",
    )
    f.pass_(
        "Summarise the group",
        next_state="Is the group whole again?",
        parameters={
            "group.$": f"{PLAN}.autoScalingGroupName",
            "desiredCapacity.$": "$.members.desired",
            "instances.$": "$.members.ids",
            "members.$": "States.ArrayLength($.members.ids)",
            "oldInstancePresent.$": f"States.ArrayContains($.members.ids, {PLAN}.instanceId)",
            "lifecycleKinds.$": "States.ArrayLength(States.ArrayUnique($.members.states))",
            "anyInService.$": "States.ArrayContains($.members.states, 'InService')",
            "healthKinds.$": "States.ArrayLength(States.ArrayUnique($.members.health))",
            "anyHealthy.$": "States.ArrayContains($.members.health, 'Healthy')",
        },
        result_path="$.verify",
    )
    f.error(
        "The group did not replace the instance",
        VerificationFailed,
        "group {} is not back to {} healthy InService members without {} after {} checks (members: {})",
        f"{PLAN}.autoScalingGroupName",
        "$.verify.desiredCapacity",
        f"{PLAN}.instanceId",
        "$.verifyState.attempt",
        "$.verify.instances",
        next_state=FAILED,
    )


def _restart(f: Flow) -> None:
    """Stop it, then start it: a stopped instance starts on other hardware. When that does not heal
    it, a replacement may take over (the fallback)."""
    f.call(STOP, next_state="Start counting stop checks", on_error=FAILED, on_failed=TAKE_OVER)
    f.poll(
        start="Start counting stop checks",
        describe="Describe the stopping instance",
        check="Has the instance stopped?",
        done=[(equals("$.verify.status.InstanceState.Name", "stopped"), START.intent)],
        give_up="The instance did not stop",
        wait="Wait for the instance to stop",
        count="Count the stop check",
        on_error=FAILED,
    )
    _status(f, "Describe the stopping instance", f"{PLAN}.instanceId", "Has the instance stopped?", FAILED)
    f.error(
        "The instance did not stop",
        VerificationFailed,
        "{} is still {} after {} checks: try again with params.forceStop",
        f"{PLAN}.instanceId",
        "$.verify.status.InstanceState.Name",
        "$.verifyState.attempt",
        next_state=TAKE_OVER,
    )
    f.call(START, next_state="Start counting health checks", on_error=FAILED, on_failed=TAKE_OVER)
    f.poll(
        start="Start counting health checks",
        describe="Describe the started instance",
        check="Is the instance running with both checks ok?",
        done=[(_healthy("$.verify.status"), VERIFIED)],
        give_up="The instance is not healthy after the restart",
        wait="Wait for the status checks",
        count="Count the health check",
        on_error=FAILED,
    )
    _status(
        f,
        "Describe the started instance",
        f"{PLAN}.instanceId",
        "Is the instance running with both checks ok?",
        FAILED,
    )
    f.error(
        "The instance is not healthy after the restart",
        VerificationFailed,
        "{} is {} with status checks system={} instance={} after {} checks",
        f"{PLAN}.instanceId",
        "$.verify.status.InstanceState.Name",
        "$.verify.status.SystemStatus.Status",
        "$.verify.status.InstanceStatus.Status",
        "$.verifyState.attempt",
        next_state=TAKE_OVER,
    )
    # The fallback hook: re-planned now, as the launch-template path (fence and scope checked again).
    f.choice(
        TAKE_OVER,
        [(equals(f"{PLAN}.fallback", "launch-template"), "Plan the replacement that takes over")],
        FAILED,
        comment="Stop/start did not heal it: launch a replacement instead (params.fallback).",
    )
    f.step(
        "Plan the replacement that takes over",
        "fallback",
        next_state="May a replacement take over?",
        comment="Re-plans as the launch-template path (fence and scope checked again) and audits the switch.",
        payload={"plan.$": PLAN, "error.$": "$.error"},
        result={"plan.$": "$.Payload.plan", "refused.$": "$.Payload.refused"},
        result_path="$.fallback",
        catches=[catch("States.ALL", FAILED, "$.fallbackError")],
    )
    f.choice(
        "May a replacement take over?",
        [({"Variable": "$.fallback.refused", "IsNull": True}, "Switch to the replacement plan")],
        "No replacement can take over",
    )
    f.pass_(
        "Switch to the replacement plan",
        next_state="Note: nothing is registered or moved yet",
        input_path="$.fallback.plan",
        result_path="$.guard.plan",
    )
    f.error(
        "No replacement can take over",
        "$.error.Error",
        "{}; no replacement could take over: {}",
        "$.error.Cause",
        "$.fallback.refused",
        next_state=FAILED,
    )


def _replacement(f: Flow) -> None:
    """Launch it, check it, register it, give it the address; then retire the old one."""
    f.pass_(
        "Note: nothing is registered or moved yet",
        next_state=LAUNCH.intent,
        result={"registered": False, "addressMoved": False},
        result_path="$.swap",
    )
    f.call(LAUNCH, next_state="Start counting replacement checks", on_error=FAILED, on_unrecorded=UNDO)
    f.poll(
        start="Start counting replacement checks",
        describe="Describe the replacement",
        check="Is the replacement running with both checks ok?",
        done=[(_healthy("$.verify.status"), "Does the old instance serve a target group?")],
        give_up="The replacement is not healthy",
        wait="Wait for the replacement's status checks",
        count="Count the replacement check",
        on_error=UNDO,
    )
    _status(
        f,
        "Describe the replacement",
        "$.replacement.instanceId",
        "Is the replacement running with both checks ok?",
        UNDO,
    )
    f.error(
        "The replacement is not healthy",
        VerificationFailed,
        "replacement {} for {} is {} with status checks system={} instance={} after {} checks",
        "$.replacement.instanceId",
        f"{PLAN}.instanceId",
        "$.verify.status.InstanceState.Name",
        "$.verify.status.SystemStatus.Status",
        "$.verify.status.InstanceStatus.Status",
        "$.verifyState.attempt",
        next_state=UNDO,
    )
    f.choice(
        "Does the old instance serve a target group?",
        [(is_true(f"{PLAN}.hasTargetGroup"), "Note: the replacement may be registered")],
        "Does the old instance have an Elastic IP?",
    )
    f.pass_(
        "Note: the replacement may be registered",
        next_state="Register the replacement in each target group",
        comment="From here the undo deregisters it wherever it got registered.",
        result=True,
        result_path="$.swap.registered",
    )
    f.each(
        "Register the replacement in each target group",
        f"{PLAN}.registrations",
        _register(),
        REGISTER.intent,
        next_state="Does the old instance have an Elastic IP?",
        catches=[catch(STOPS, SKIPPED), catch("States.ALL", UNDO)],
        item={"replacement": "$.replacement"},
        comment="One group at a time: register the replacement on the old one's port, then wait until it is"
        " healthy there.",
    )
    f.choice(
        "Does the old instance have an Elastic IP?",
        [(is_true(f"{PLAN}.hasAddress"), ASSOCIATE.intent)],
        "Deregister the old instance?",
    )
    f.call(
        ASSOCIATE,
        next_state="Note: the Elastic IP was moved",
        on_error=UNDO,
        runtime=REPLACEMENT,
        before=None,
    )
    f.pass_(
        "Note: the Elastic IP was moved",
        next_state="Start counting address checks",
        result=True,
        result_path="$.swap.addressMoved",
    )
    f.poll(
        start="Start counting address checks",
        describe="Describe the Elastic IP",
        check="Is the Elastic IP on the replacement?",
        done=[
            (
                all_of(
                    {"Variable": "$.verify.address.InstanceId", "IsPresent": True},
                    {
                        "Variable": "$.verify.address.InstanceId",
                        "StringEqualsPath": "$.replacement.instanceId",
                    },
                ),
                "Deregister the old instance?",
            )
        ],
        give_up="The Elastic IP is not on the replacement",
        wait="Wait for the Elastic IP",
        count="Count the address check",
        on_error=UNDO,
    )
    f.describe(
        "Describe the Elastic IP",
        "aws-sdk:ec2:describeAddresses",
        {"AllocationIds.$": f"States.Array({PLAN}.allocationId)"},
        {"address.$": "States.ArrayGetItem($.Addresses, 0)"},
        next_state="Is the Elastic IP on the replacement?",
        on_error=UNDO,
    )
    f.error(
        "The Elastic IP is not on the replacement",
        VerificationFailed,
        "Elastic IP {} is not on replacement {} after {} checks",
        f"{PLAN}.allocationId",
        "$.replacement.instanceId",
        "$.verifyState.attempt",
        next_state=UNDO,
    )
    f.choice(
        "Deregister the old instance?",
        [(is_true(f"{PLAN}.hasTargetGroup"), "Deregister the old instance from each target group")],
        "How is the old instance retired?",
    )
    f.each(
        "Deregister the old instance from each target group",
        f"{PLAN}.registrations",
        _deregister(),
        DEREGISTER.intent,
        next_state="How is the old instance retired?",
        catches=[catch(STOPS, SKIPPED), catch("States.ALL", "Explain: the old instance is still registered")],
        comment="The replacement is healthy in every group and holds the address: take the old one out.",
    )
    f.error(
        "Explain: the old instance is still registered",
        rb.OldInstanceStillRegistered,
        "replacement {} serves (healthy in every target group, holding the address), but {} could not be"
        " deregistered ({}): it is left running and registered; deregister and retire it by hand",
        "$.replacement.instanceId",
        f"{PLAN}.instanceId",
        "$.error.Cause",
        next_state=FAILED,
    )
    f.choice(
        "How is the old instance retired?",
        [(equals(f"{PLAN}.retire", "terminate"), RETIRE_TERMINATE.intent)],
        RETIRE_STOP.intent,
    )
    for retire in (RETIRE_TERMINATE, RETIRE_STOP):
        f.call(retire, next_state="Summarise the replacement", on_error=FAILED, before=None)
    f.pass_(
        "Summarise the replacement",
        next_state=VERIFIED,
        parameters={
            "oldInstanceId.$": f"{PLAN}.instanceId",
            "newInstanceId.$": "$.replacement.instanceId",
            "allocationId.$": f"{PLAN}.allocationId",
            "registrations.$": f"{PLAN}.registrations",
            "retired.$": f"{PLAN}.retire",
            "fallbackFrom.$": f"{PLAN}.fallbackFrom",
        },
        result_path="$.verify",
    )
    _undo(f)


def _register() -> Flow:
    it = Flow(rb.ReplaceInstance.name)
    it.call(
        REGISTER,
        next_state="Start counting target health checks",
        on_error="Registration failed",
        index="$.index",
        runtime=REPLACEMENT,
        before=None,
        skip=None,
    )
    it.fail("Registration failed", comment="The Map's Catch undoes the replacement.")
    it.poll(
        start="Start counting target health checks",
        describe="Describe the replacement's target health",
        check="Is the replacement healthy in the target group?",
        done=[(equals("$.verify.description.TargetHealth.State", "healthy"), "Healthy in this target group")],
        give_up="The replacement is not healthy in the target group",
        wait="Wait for the target health",
        count="Count the target health check",
        on_error="Target health unknown",
        skip=None,
    )
    it.describe(
        "Describe the replacement's target health",
        TARGET_HEALTH,
        {"TargetGroupArn.$": "$.item.targetGroupArn", "Targets.$": "$.call.parameters.Targets"},
        {"description.$": "States.ArrayGetItem($.TargetHealthDescriptions, 0)"},
        next_state="Is the replacement healthy in the target group?",
        on_error="Target health unknown",
    )
    it.fail("Target health unknown", comment="The Map's Catch undoes the replacement.")
    it.succeed("Healthy in this target group")
    it.error(
        "The replacement is not healthy in the target group",
        VerificationFailed,
        "replacement {} for {} is {} in target group {} after {} checks",
        "$.replacement.instanceId",
        f"{PLAN}.instanceId",
        "$.verify.description.TargetHealth.State",
        "$.item.targetGroupArn",
        "$.verifyState.attempt",
        next_state="Not healthy in this target group",
    )
    it.fail("Not healthy in this target group", comment="The Map's Catch undoes the replacement.")
    return it


def _deregister() -> Flow:
    it = Flow(rb.ReplaceInstance.name)
    it.call(
        DEREGISTER,
        next_state="Deregistered from this target group",
        on_error="Deregistration failed",
        index="$.index",
        before=None,
        skip=None,
    )
    it.fail("Deregistration failed", comment="The replacement serves already: no undo, escalate.")
    it.succeed("Deregistered from this target group")
    return it


def _undo(f: Flow) -> None:
    """Newest first: the address back, the registrations out, the replacement terminated."""
    f.choice(UNDO, [(is_true("$.swap.addressMoved"), MOVE_BACK.intent)], UNDO_REGISTRATIONS)
    f.call(MOVE_BACK, next_state=UNDO_REGISTRATIONS, on_error=UNDO_REGISTRATIONS, before=None)
    f.choice(
        UNDO_REGISTRATIONS,
        [(is_true("$.swap.registered"), "Undo: deregister the replacement from each target group")],
        TERMINATE_REPLACEMENT.intent,
    )
    f.each(
        "Undo: deregister the replacement from each target group",
        f"{PLAN}.registrations",
        _deregister_replacement(),
        "Name the replacement's target (undo)",
        next_state=TERMINATE_REPLACEMENT.intent,
        catches=[
            catch(STOPS, SKIPPED),
            catch("States.ALL", TERMINATE_REPLACEMENT.intent, "$.compensationError"),
        ],
        item={"replacement": "$.replacement"},
        comment="Undo the registrations, where they were made.",
    )
    f.call(TERMINATE_REPLACEMENT, next_state=FAILED, on_error=FAILED, runtime=REPLACEMENT, before=None)


def _deregister_replacement() -> Flow:
    it = Flow(rb.ReplaceInstance.name)
    it.pass_(
        "Name the replacement's target (undo)",
        next_state="Is the replacement registered here?",
        comment="The replacement as a target: the old one's port.",
        parameters={"Id.$": "$.replacement.instanceId", "Port.$": "$.item.target.Port"},
        result_path="$.newTarget",
    )
    it.describe(
        "Is the replacement registered here?",
        TARGET_HEALTH,
        {"TargetGroupArn.$": "$.item.targetGroupArn", "Targets.$": "States.Array($.newTarget)"},
        {"description.$": "States.ArrayGetItem($.TargetHealthDescriptions, 0)"},
        next_state="Registered here?",
        on_error=DEREGISTER_REPLACEMENT.intent,
        result_path="$.registered",
    )
    # A failure part-way through registering: not every group has it.
    reason = "$.registered.description.TargetHealth.Reason"
    it.choice(
        "Registered here?",
        [({"Variable": reason, "IsPresent": True}, "Not registered because?")],
        DEREGISTER_REPLACEMENT.intent,
    )
    it.choice(
        "Not registered because?",
        [(equals(reason, "Target.NotRegistered"), "Nothing to undo in this target group")],
        DEREGISTER_REPLACEMENT.intent,
    )
    it.succeed("Nothing to undo in this target group")
    it.call(
        DEREGISTER_REPLACEMENT,
        next_state="Deregistered the replacement here",
        on_error="Deregistering the replacement failed",
        index="$.index",
        runtime=REPLACEMENT,
        before=None,
        skip=None,
    )
    it.fail(
        "Deregistering the replacement failed",
        error_path="$.compensationError",
        comment="Audited; the undo goes on: terminating it takes it out of every group.",
    )
    it.succeed("Deregistered the replacement here")
    return it


def _undo_entries(f: Flow) -> None:
    """Where an undo run (a run stopped from outside) begins when the stop fell in a call whose
    outcome the stopped run never learnt."""
    _status(
        f, "Undo: did the stop reach the instance?", f"{PLAN}.instanceId", "Undo: is it stopping?", FAILED
    )
    f.choice(
        "Undo: is it stopping?",
        [
            (equals("$.verify.status.InstanceState.Name", "running"), "Explain: the stop did not happen"),
            (equals("$.verify.status.InstanceState.Name", "pending"), "Explain: the stop did not happen"),
        ],
        "Start counting stop checks",
        comment="Stopped or stopping: the undo of a stop is the start that was to follow.",
    )
    nothing_to_undo(
        f,
        "Explain: the stop did not happen",
        "{}: {} is {}, it was not stopped; nothing to undo",
        "$.error.Cause",
        f"{PLAN}.instanceId",
        "$.verify.status.InstanceState.Name",
    )
    f.choice(
        "Undo: was the replacement launched?",
        [({"Variable": "$.replacement.instanceId", "IsPresent": True}, UNDO)],
        "Explain: the launch was in flight",
    )
    f.error(
        "Explain: the launch was in flight",
        "$.error.Error",
        "{}: RunInstances had not answered; an instance it may have launched (from the launch source of"
        " {}) is unknown to the run: look for it and terminate it",
        "$.error.Cause",
        f"{PLAN}.instanceId",
        next_state=FAILED,
    )
    f.pass_(
        "Undo: the Elastic IP may have been moved",
        next_state=UNDO,
        comment="The move had not answered: move it back (a no-op where it never left).",
        result=True,
        result_path="$.swap.addressMoved",
    )


UNDO_ENTRIES = (
    (STOP, "Undo: did the stop reach the instance?"),
    (START, START.intent),  # sent again: a start is safe to repeat
    (LAUNCH, "Undo: was the replacement launched?"),
    (REGISTER, UNDO),
    (ASSOCIATE, "Undo: the Elastic IP may have been moved"),
    (MOVE_BACK, MOVE_BACK.intent),
    (DEREGISTER_REPLACEMENT, UNDO_REGISTRATIONS),
    (TERMINATE_REPLACEMENT, TERMINATE_REPLACEMENT.intent),
)


def body(f: Flow) -> str:
    f.choice(
        "Which path heals it?",
        [(equals(f"{PLAN}.path", "asg"), MARK.intent), (equals(f"{PLAN}.path", "stop-start"), STOP.intent)],
        "Note: nothing is registered or moved yet",
    )
    _group_member(f)
    _restart(f)
    _replacement(f)
    _undo_entries(f)
    f.record(VERIFIED, "verified", next_state=SUCCEEDED, on_error=FAILED, **{"after.$": "$.verify"})
    return "Which path heals it?"


WORKFLOW = Workflow(
    runbook=rb.ReplaceInstance.name,
    comment=(
        "replace-instance: heal a failed or retiring EC2 instance. Group member: mark it unhealthy (the group"
        " replaces it, within its budget); standalone EBS-backed: stop and start it onto new hardware, and if"
        " that does not heal it, fall back to a replacement; otherwise launch a replacement (its launch"
        " template, its tags), register it in each of its target groups, move the Elastic IP and check it,"
        " deregister and retire the old one (any failure before that undoes the replacement). A run stopped"
        " from outside is settled by an undo run (input {undo: <stopped execution>}): a stop is followed by"
        " its start, a replacement undone. Input: {target:"
        " {instanceId}, params: {strategy?, maxInFlight?, forceStop?, retire?, fallback?, verifyAttempts?,"
        " verifyIntervalSeconds?}, dryRun, reason}."
    ),
    precheck="Precheck: can the instance be healed now?",
    body=body,
    undo=UNDO_ENTRIES,
)
