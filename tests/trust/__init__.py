"""Proof of trust: crash, fault, storage, concurrency, fuzzing and injection scenarios that print their figures.

Run the full suite with ``make trust`` (``python -m tests.trust``); the test
suite (``make test``, CI) runs each scenario in its short form through
``tests/trust/test_*.py``.  Every scenario returns :class:`~tests.trust.report.Row`
objects; the runner prints one table.
"""
