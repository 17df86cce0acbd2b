"""Unit-test settings.

Hypothesis fails an example that runs longer than its ``deadline`` (200 ms by
default): a timed test, which a loaded machine (``pytest -n auto`` on shared
cores) turns flaky.  Speed is measured by benchmarks/, so no property test
here has a deadline.
"""

from hypothesis import settings

settings.register_profile("gotor-unit", deadline=None)
settings.load_profile("gotor-unit")
