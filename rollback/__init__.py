"""revgate's rollback: find the revision under test, plan the traffic to restore, apply it.

Modules, each named by what it does:

- :mod:`revgate.rollback.options`     the "revgate rollback" option group
- :mod:`revgate.rollback.traffic`     traffic entries and revisions as plain frozen values
- :mod:`revgate.rollback.cloudrun`    the Cloud Run Admin API calls (explicit timeouts, bounded retries)
- :mod:`revgate.rollback.deployment`  :class:`Deployment`: what is under test and the pre-run snapshot
- :mod:`revgate.rollback.plan`        the traffic to restore (pure functions)
- :mod:`revgate.rollback.apply`       sending the plan: etag, conflicts, waiting, confirming
- :mod:`revgate.rollback.record`      the JSON rollback record and the hand-made command
- :mod:`revgate.rollback.plugin`      the pytest plugin that ties them together

Nothing is imported here, so that loading the options stays fast.

Import it as ``revgate.rollback``: in a checkout ``revgate/rollback`` links to this
folder, and the wheel ships the folder there, so that installing revgate adds no
top-level ``rollback`` (PyPI has an unrelated package of that name).
"""
