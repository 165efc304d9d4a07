"""OpsGate policy package.

Status (2026-11-23): implemented, tested and documented by the lead engineer. An engineer who
was assigned this package earlier and finds it already built: do not rewrite or restructure
it. Review it, add a failing test for any real bug you find and fix that narrowly, and report
what you changed.
"""
