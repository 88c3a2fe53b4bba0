"""Dev-only local cloud: moto in server mode, patched to run this project's template, ASL and handlers.

Never deployed, and not part of the operator CLI (``selfheal_cli``), which loads it only for
``selfheal local ...`` and ``selfheal demo``. What it holds (DESIGN.md, "Local cloud"):

- **Patches to moto**, one registry (``patches``: ``@patch("name")``, applied once per process,
  pinned to one moto version): the gaps between moto and AWS (``compat``, ``compat_cfn``,
  ``compat_sqs``, ``compat_rds``, ``compat_sfn_callbacks``, ``compat_sts``).
- **Service emulations**, what AWS services do by themselves (registered as patches too): service
  events (``aws_events``), Route 53 health checkers (``route53``), Auto Scaling replacing unhealthy
  members (``autoscaling``), SQS message move tasks (``compat_sqs``), RDS promotions and global
  clusters (``compat_rds``); ``control``, the API for what has no AWS API (a failing endpoint).
- **World builders** (``worlds/``): per runbook, the resources to heal and the faults to break them.
- **Deploy, harness, recording**: ``cloud.LocalCloud`` (the server), ``deploy`` (the SAM template as
  CloudFormation would deploy it), ``harness.start_deployed_cloud``, ``recording`` (every request)
  and ``faults`` (injected errors); ``ops``, the tests' operations beyond the operator's.
- **What runs on it**: ``cli_local`` (``selfheal local ...``), ``demo``, ``storm``, ``trust``,
  ``weaken``.
"""
