"""Test-wide settings.

Property tests draw new examples on every run, which is how they find bugs. In CI (``CI`` set)
they draw a fixed sequence instead, so a red build always means a change broke something and
re-running it gives the same answer; run the suite locally, or with a larger
``EXECLAB_FUZZ_EXAMPLES``, to explore.
"""

import os

from hypothesis import settings

# No deadline: a test never fails on timing, and a loaded machine is slow, not wrong.
settings.register_profile("local", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "local")
