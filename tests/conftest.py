import os

from hypothesis import settings

# Property tests stay quick and deterministic in CI: a fixed number of examples, derandomized.
settings.register_profile("ci", max_examples=40, deadline=None, derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
