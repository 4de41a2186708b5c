"""Test-wide settings.

Property tests draw new examples on every run, which is how they find bugs. In CI (``CI`` set)
they draw a fixed sequence instead, so a red build always means a change broke something and
re-running it gives the same answer; run the suite locally, or with a larger
``EXECLAB_FUZZ_EXAMPLES``, to explore.
"""

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
