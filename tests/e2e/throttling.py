"""How many throttles a step meets in the e2e throttling tests."""

from selfheal.clients import RETRIES

# More than the client's own attempts absorb: the step fails with AwsCallFailed once, the state
# machine's retry policy runs it again, and that attempt's first call is throttled, its next works.
THROTTLES_PAST_THE_CLIENT = int(RETRIES["total_max_attempts"]) + 1
