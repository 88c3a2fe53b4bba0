"""Dev-only local cloud: moto in server mode, patched to run this project's template, ASL and handlers.

Never deployed. See DESIGN.md ("Local cloud"): ``cloud.LocalCloud``, ``deploy.deploy``,
``harness.start_deployed_cloud``, ``ops`` (shared waits and lookups) and the ``selfheal`` CLI (``cli``).
"""
