"""remap-eip resolve and precheck against moto EC2: what moves where, and when it must not."""

import pytest

from selfheal.errors import NotApplicable, PreconditionFailed, UnknownResource
from selfheal.runbooks.remap_eip import RemapEip, RemapEipParams, RemapEipTarget, precheck, resolve

KEY, VALUE = "selfheal:managed", "true"


def target(**kw):
    return RemapEipTarget.model_validate(kw)


def test_resolve_finds_the_managed_eip_of_the_failed_instance_and_its_tagged_standby(
    clients, settings, world
):
    primary, standby = world.instance(), world.instance()
    allocation = world.eip(on=primary, standby=standby)
    move = resolve(world.ec2, target(instanceId=primary), RemapEipParams(), KEY, VALUE)
    assert (move.allocation_id, move.from_instance_id, move.standby_instance_id) == (
        allocation,
        primary,
        standby,
    )
    assert set(move.resource_tags) == {allocation, standby}
    associate, move_back = RemapEip(clients, settings).exact_calls(move)
    assert (associate.name, associate.action) == ("associate", "ec2:AssociateAddress")
    assert associate.parameters == {
        "AllocationId": allocation,
        "InstanceId": standby,
        "AllowReassociation": True,
    }
    assert move_back.name == "move-back" and move_back.parameters["InstanceId"] == primary


def test_resolve_params_standby_overrides_the_tag(world):
    primary, tagged, chosen = world.instance(), world.instance(), world.instance()
    world.eip(on=primary, standby=tagged)
    move = resolve(
        world.ec2, target(instanceId=primary), RemapEipParams(standbyInstanceId=chosen), KEY, VALUE
    )
    assert move.standby_instance_id == chosen


def test_resolve_instance_without_managed_eip_is_not_applicable(world):
    primary = world.instance()
    world.eip(on=primary, fenced=False)
    with pytest.raises(NotApplicable):
        resolve(world.ec2, target(instanceId=primary), RemapEipParams(), KEY, VALUE)


def test_resolve_unknown_allocation_is_a_named_error(world):
    with pytest.raises(UnknownResource):
        resolve(world.ec2, target(allocationId="eipalloc-0123456789abcdef0"), RemapEipParams(), KEY, VALUE)


def test_resolve_unknown_standby_is_a_named_error(world):
    primary = world.instance()
    world.eip(on=primary, standby="i-0123456789abcdef0")
    with pytest.raises(UnknownResource):
        resolve(world.ec2, target(instanceId=primary), RemapEipParams(), KEY, VALUE)


def test_resolve_without_standby_says_how_to_name_one(world):
    primary = world.instance()
    world.eip(on=primary)
    with pytest.raises(PreconditionFailed, match="standbyInstanceId"):
        resolve(world.ec2, target(instanceId=primary), RemapEipParams(), KEY, VALUE)


def test_resolve_eip_already_on_the_standby_is_not_applicable(world):
    standby = world.instance()
    allocation = world.eip(on=standby, standby=standby)
    with pytest.raises(NotApplicable):
        resolve(world.ec2, target(allocationId=allocation), RemapEipParams(), KEY, VALUE)


def test_precheck_refuses_a_stopped_standby(world):
    primary, standby = world.instance(), world.instance()
    world.eip(on=primary, standby=standby)
    move = resolve(world.ec2, target(instanceId=primary), RemapEipParams(), KEY, VALUE)
    world.ec2.stop_instances(InstanceIds=[standby])
    with pytest.raises(PreconditionFailed, match="stopped"):
        precheck(world.ec2, move)


def test_precheck_records_the_association_before_the_move(world):
    primary, standby = world.instance(), world.instance()
    allocation = world.eip(on=primary, standby=standby)
    move = resolve(world.ec2, target(instanceId=primary), RemapEipParams(), KEY, VALUE)
    before = precheck(world.ec2, move)
    assert before["allocationId"] == allocation and before["instanceId"] == primary
    assert before["associationId"] and before["standby"]["statusChecks"] == {"system": "ok", "instance": "ok"}


def test_resolve_finds_the_eip_by_its_primary_tag_once_the_instance_lost_it(world):
    primary, standby = world.instance(), world.instance()
    allocation = world.eip(standby=standby)  # not associated: the primary was terminated
    world.ec2.create_tags(Resources=[allocation], Tags=[{"Key": "selfheal:primary", "Value": primary}])
    move = resolve(world.ec2, target(instanceId=primary), RemapEipParams(), KEY, VALUE)
    assert move.allocation_id == allocation and not move.from_instance_id


def test_resolve_by_instance_ignores_unfenced_and_other_instances_eips(world):
    primary, other, standby = world.instance(), world.instance(), world.instance()
    world.eip(on=primary, standby=standby, fenced=False)
    world.eip(on=other, standby=standby)
    with pytest.raises(NotApplicable, match="no managed Elastic IP"):
        resolve(world.ec2, target(instanceId=primary), RemapEipParams(), KEY, VALUE)


def test_resolve_by_instance_compares_the_fence_value_exactly_as_iam_does(world):
    primary, standby = world.instance(), world.instance()
    allocation = world.eip(on=primary, standby=standby)
    world.ec2.create_tags(Resources=[allocation], Tags=[{"Key": KEY, "Value": "TRUE"}])
    with pytest.raises(NotApplicable, match="no managed Elastic IP"):
        resolve(world.ec2, target(instanceId=primary), RemapEipParams(), KEY, VALUE)


def test_precheck_refuses_a_standby_that_no_longer_exists(world):
    primary, standby = world.instance(), world.instance()
    world.eip(on=primary, standby=standby)
    move = resolve(world.ec2, target(instanceId=primary), RemapEipParams(), KEY, VALUE)
    world.ec2.terminate_instances(InstanceIds=[standby])
    with pytest.raises((PreconditionFailed, UnknownResource), match=r"terminated|no instance"):
        precheck(world.ec2, move)
