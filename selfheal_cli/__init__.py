"""The operator CLI, ``selfheal``: trigger runbooks, read and verify the audit trail, see and steer a
stack (status, leases), answer approvals, validate a policy; against a deployed stack on AWS or the
local cloud.

It needs only boto3 (botocore), the standard library and the core package ``selfheal``, so an
operator installs it without the development tooling. ``selfheal local ...`` and ``selfheal demo``
are the development checkout's (``localcloud``, moto), imported only when one of them runs.
"""
