"""CloudFormation resource types the template uses that moto 5.2.5 skips, plus SNS -> Lambda delivery.

moto finds CloudFormation models through ``CloudFormationModel.__subclasses__()`` (cached), so the models
are defined inside ``register_cfn_models`` (no import-time registration) and the caches are cleared.
Pinned to moto 5.2.5 with every patch (localcloud.patches).
"""

from __future__ import annotations

import datetime
import json
import uuid
from typing import Any

from localcloud.patches import patch


@patch("cfn-models")
def register_cfn_models() -> None:
    """AWS::SNS::Subscription, AWS::SNS::TopicPolicy, AWS::SQS::QueuePolicy and
    AWS::Lambda::EventInvokeConfig."""
    from moto.awslambda.utils import get_backend as lambda_backend
    from moto.cloudformation import parsing
    from moto.core.common_models import CloudFormationModel
    from moto.sns.models import sns_backends
    from moto.sqs.models import sqs_backends

    class _Plumbing:
        """Common plumbing: no attributes, no in-place updates (CloudFormation replaces). Each model below
        must subclass CloudFormationModel directly: moto only looks at its direct subclasses."""

        def __init__(self, physical_id: str) -> None:
            self.physical_id = physical_id

        @property
        def physical_resource_id(self) -> str:
            return self.physical_id

        @staticmethod
        def cloudformation_name_type() -> str:
            return ""

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return False

        @classmethod
        def update_from_cloudformation_json(
            cls,
            original_resource: Any,
            new_resource_name: str,
            cloudformation_json: dict[str, Any],
            account_id: str,
            region_name: str,
        ) -> Any:
            create = cls.create_from_cloudformation_json  # type: ignore[attr-defined]
            return create(new_resource_name, cloudformation_json, account_id, region_name)

    class SnsSubscription(_Plumbing, CloudFormationModel):
        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::SNS::Subscription"

        @classmethod
        def create_from_cloudformation_json(
            cls,
            resource_name: str,
            cloudformation_json: dict[str, Any],
            account_id: str,
            region_name: str,
            **kw: Any,
        ) -> SnsSubscription:
            props = cloudformation_json["Properties"]
            backend = sns_backends[account_id][props.get("Region", region_name)]
            subscription = backend.subscribe(props["TopicArn"], props["Endpoint"], props["Protocol"])
            for name in (
                "RawMessageDelivery",
                "FilterPolicy",
                "FilterPolicyScope",
                "RedrivePolicy",
                "DeliveryPolicy",
            ):
                if name in props:
                    value = props[name]
                    text = json.dumps(value) if isinstance(value, dict) else str(value).lower()
                    backend.set_subscription_attributes(subscription.arn, name, text)
            return cls(subscription.arn)

    class SnsTopicPolicy(_Plumbing, CloudFormationModel):
        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::SNS::TopicPolicy"

        @classmethod
        def create_from_cloudformation_json(
            cls,
            resource_name: str,
            cloudformation_json: dict[str, Any],
            account_id: str,
            region_name: str,
            **kw: Any,
        ) -> SnsTopicPolicy:
            props = cloudformation_json["Properties"]
            backend = sns_backends[account_id][region_name]
            for topic in props.get("Topics", []):
                # moto stores topic attributes as snake_case object attributes (the API layer converts).
                backend.set_topic_attribute(topic, "policy", json.dumps(props["PolicyDocument"]))
            return cls(resource_name)

    class SqsQueuePolicy(_Plumbing, CloudFormationModel):
        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::SQS::QueuePolicy"

        @classmethod
        def create_from_cloudformation_json(
            cls,
            resource_name: str,
            cloudformation_json: dict[str, Any],
            account_id: str,
            region_name: str,
            **kw: Any,
        ) -> SqsQueuePolicy:
            props = cloudformation_json["Properties"]
            backend = sqs_backends[account_id][region_name]
            for queue_url in props.get("Queues", []):
                queue_name = str(queue_url).rstrip("/").rsplit("/", 1)[-1]
                backend.set_queue_attributes(queue_name, {"Policy": json.dumps(props["PolicyDocument"])})
            return cls(resource_name)

    class LambdaEventInvokeConfig(_Plumbing, CloudFormationModel):
        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::Lambda::EventInvokeConfig"

        @classmethod
        def create_from_cloudformation_json(
            cls,
            resource_name: str,
            cloudformation_json: dict[str, Any],
            account_id: str,
            region_name: str,
            **kw: Any,
        ) -> LambdaEventInvokeConfig:
            props = dict(cloudformation_json["Properties"])
            function_name = props.pop("FunctionName")
            props.pop("Qualifier", None)
            lambda_backend(account_id, region_name).put_function_event_invoke_config(function_name, props)
            return cls(resource_name)

    for cached in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
        cached.cache_clear()


def sns_lambda_event(
    subscription: Any, message: str, message_id: str, subject: str | None, attributes: Any
) -> Any:
    """The event Lambda receives from an SNS subscription (shape from the SNS developer guide)."""
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return {
        "Records": [
            {
                "EventVersion": "1.0",
                "EventSubscriptionArn": subscription.arn,
                "EventSource": "aws:sns",
                "Sns": {
                    "SignatureVersion": "1",
                    "Timestamp": now,
                    "Signature": "EXAMPLE",
                    "SigningCertUrl": "EXAMPLE",
                    "MessageId": message_id,
                    "Message": message,
                    "MessageAttributes": attributes or {},
                    "Type": "Notification",
                    "UnsubscribeUrl": "EXAMPLE",
                    "TopicArn": subscription.topic.arn,
                    "Subject": subject,
                },
            }
        ]
    }


@patch("sns-lambda-delivery")
def patch_sns_lambda_delivery() -> None:
    """moto's SNS -> Lambda path calls the function's Docker runtime directly (and sends a fixed dummy
    event); deliver through the in-process runtime with the real topic and message ids."""
    from moto.awslambda.utils import get_backend as lambda_backend
    from moto.sns.models import Subscription

    cls: Any = Subscription
    original = cls.publish

    def publish(
        self: Any,
        message: str,
        message_id: str,
        subject: str | None = None,
        message_attributes: dict[str, Any] | None = None,
        group_id: str | None = None,
        deduplication_id: str | None = None,
        message_structure: str | None = None,
    ) -> None:
        if self.protocol != "lambda":
            original(
                self,
                message,
                message_id,
                subject,
                message_attributes,
                group_id,
                deduplication_id,
                message_structure,
            )
            return
        if self._filter_policy_matcher is not None and not self._filter_policy_matcher.matches(
            message_attributes, message
        ):
            return
        parts = self.endpoint.split(":")
        qualifier = parts[7] if len(parts) == 8 else None
        event = sns_lambda_event(self, message, message_id or str(uuid.uuid4()), subject, message_attributes)
        lambda_backend(parts[4], parts[3]).invoke(
            parts[6], qualifier, json.dumps(event), {"X-Amz-Invocation-Type": "Event"}, {}
        )

    cls.publish = publish


@patch("cfn-list-parameter-defaults")
def patch_list_parameter_defaults() -> None:
    """A CommaDelimitedList (or List<...>) parameter left at its Default is a list, as in AWS;
    moto 5.2.5 splits only values passed in, so a default ``none`` stayed the string "none" (then
    ``!Select [0, ...]`` gave "n" and conditions on it were wrong)."""
    from moto.cloudformation.parsing import ResourceMap

    original = ResourceMap.load_parameters

    def load_parameters(self: Any) -> None:
        original(self)
        for name, slot in self._template.get("Parameters", {}).items():
            kind = str(slot.get("Type", "String"))
            value = self.resolved_parameters.get(name)
            if isinstance(value, str) and (kind == "CommaDelimitedList" or kind.startswith("List<")):
                split = value.split(",")
                self.resolved_parameters[name] = split
                self._parsed_resources[name] = split

    ResourceMap.load_parameters = load_parameters  # type: ignore[method-assign]
