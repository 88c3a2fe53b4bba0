"""Public list prices the cost model uses: one place, with their source page and date.

Region us-east-1, on-demand, no free tier (a busy account has used it up; a quiet one pays less).
These are the list prices as published on the named pages (AS_OF). This machine cannot reach
aws.amazon.com; on 2026-11-22 they were checked against stored copies of public pages (the project's
search tool), see VERIFIED. SNS was not found there: check its page before quoting it to anyone.
"""

from __future__ import annotations

from dataclasses import dataclass

AS_OF = "2025-06"
REGION = "us-east-1"
# Where each price was last confirmed (2026-11-22), and by what.
VERIFIED = {
    "stepfunctions_standard_transition": "aws.amazon.com/step-functions/pricing: US East $0.0250",
    "lambda_arm64_gb_second": "third-party guides quoting the Lambda pricing page (arm, first 7.5bn GB-s)",
    "lambda_request": "third-party guides quoting the Lambda pricing page",
    "dynamodb_wru": "third-party guides after the November 2024 on-demand price cut (US East)",
    "dynamodb_rru": "third-party guides after the November 2024 on-demand price cut (US East)",
    "eventbridge_custom_event": "third-party guides quoting the EventBridge pricing page (2026)",
    "xray_trace_recorded": "aws.amazon.com/xray/pricing (de): 5 USD per million recorded traces",
}


@dataclass(frozen=True)
class Price:
    usd: float  # per ``per`` units
    per: float
    unit: str
    source: str  # the page's title

    @property
    def unit_price(self) -> float:
        return self.usd / self.per


STEP_FUNCTIONS_STANDARD_TRANSITION = Price(
    0.025, 1_000, "state transition (Standard workflows)", "AWS Step Functions Pricing"
)
LAMBDA_ARM64_GB_SECOND = Price(
    0.0000133334, 1, "GB-second, arm64, first 7.5 billion GB-s per month", "AWS Lambda Pricing"
)
LAMBDA_REQUEST = Price(0.20, 1_000_000, "request", "AWS Lambda Pricing")
DYNAMODB_WRITE_REQUEST_UNIT = Price(
    0.625, 1_000_000, "write request unit (on-demand, Standard table class)", "Amazon DynamoDB Pricing"
)
DYNAMODB_READ_REQUEST_UNIT = Price(
    0.125, 1_000_000, "read request unit (on-demand, Standard table class)", "Amazon DynamoDB Pricing"
)
SNS_PUBLISH = Price(0.50, 1_000_000, "publish request (64 KB chunk), standard topic", "Amazon SNS Pricing")
SNS_EMAIL_DELIVERY = Price(2.00, 100_000, "email notification delivered", "Amazon SNS Pricing")
EVENTBRIDGE_CUSTOM_EVENT = Price(
    1.00, 1_000_000, "custom event published (64 KB chunk)", "Amazon EventBridge Pricing"
)
XRAY_TRACE_RECORDED = Price(5.00, 1_000_000, "trace recorded", "AWS X-Ray Pricing")

# Not priced per remediation, said so in the README: EC2 and SSM (standard parameter) API calls are
# free; AWS service events on the default bus are free; CloudWatch Logs ingestion ($0.50/GB) and EMF
# metrics ($0.30 per metric-month) depend on volume and log level, not on one remediation.

# Lambda bills the init phase too (since 2025-08-01, for on-demand functions on managed runtimes), so
# a cold start adds its init duration to the GB-seconds. The model below counts warm invocations.

# Durations measured on the local cloud are this machine's, not an arm64 Lambda's at 256 MB (which has
# a fraction of a vCPU) and they have no network round trips: the model adds this much per AWS call
# the invocation makes. An assumption, not a measurement; GB-seconds are a rounding error here anyway.
ASSUMED_AWS_CALL_MS = 20.0
ALL = {
    "stepfunctions_standard_transition": STEP_FUNCTIONS_STANDARD_TRANSITION,
    "lambda_arm64_gb_second": LAMBDA_ARM64_GB_SECOND,
    "lambda_request": LAMBDA_REQUEST,
    "dynamodb_wru": DYNAMODB_WRITE_REQUEST_UNIT,
    "dynamodb_rru": DYNAMODB_READ_REQUEST_UNIT,
    "sns_publish": SNS_PUBLISH,
    "sns_email_delivery": SNS_EMAIL_DELIVERY,
    "eventbridge_custom_event": EVENTBRIDGE_CUSTOM_EVENT,
    "xray_trace_recorded": XRAY_TRACE_RECORDED,
}
