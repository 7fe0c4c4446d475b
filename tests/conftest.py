import os

from hypothesis import settings

# Tests never touch the network: dataset="auto" falls back to the synthetic set at once, here and in the
# notebook kernels the report tests start (they inherit the environment).
os.environ["IMAGE_REPORT_OFFLINE"] = "1"

# Property tests stay quick and deterministic in CI: a fixed number of examples, derandomized.
settings.register_profile("ci", max_examples=40, deadline=None, derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
