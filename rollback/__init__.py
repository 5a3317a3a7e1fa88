"""revgate's rollback: find the revision under test, plan the traffic to restore, apply it.

Modules, each named by what it does:

- :mod:`rollback.options`     the "revgate rollback" option group
- :mod:`rollback.traffic`     traffic entries and revisions as plain frozen values
- :mod:`rollback.cloudrun`    the Cloud Run Admin API calls (explicit timeouts, bounded retries)
- :mod:`rollback.deployment`  :class:`Deployment`: what is under test and the pre-run snapshot
- :mod:`rollback.plan`        the traffic to restore (pure functions)
- :mod:`rollback.apply`       sending the plan: etag, conflicts, waiting, confirming
- :mod:`rollback.record`      the JSON rollback record and the hand-made command
- :mod:`rollback.plugin`      the pytest plugin that ties them together

Nothing is imported here, so that loading the options stays fast.
"""
