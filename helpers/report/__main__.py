"""``python -m helpers.report``: run the notebooks and write the report."""

import sys

from helpers.report.pipeline import main

sys.exit(main())
