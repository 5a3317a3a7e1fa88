"""revgate: a post-deploy verification gate for Google Cloud Run, as a pytest suite.

The ``revgate`` command (:mod:`revgate.cli`) runs the installed suite
(:mod:`revgate.suite`); the pytest plugins live in this package and in
``rollback``. PYTEST_DONT_REWRITE: ``python -m revgate`` imports this package
before pytest starts, so pytest cannot rewrite it (and need not).
"""
