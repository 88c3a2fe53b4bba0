"""The workflow builder: statemachines/*.asl.json are its output (``python -m tools.asl.build``).

``idioms`` holds the states every workflow is written in, ``frame`` the one skeleton they share,
``runbooks/`` one module per runbook with only its own states. Dev-time only: it imports the core
package (error classes, call declarations), never moto or AWS.
"""
