"""The report: its parameters (defined once), results read and written one way, the environment record,
figure style, one module per notebook in ``chapters/``, and the papermill pipeline that runs the notebooks
and writes ``report.html`` and ``report.pdf`` (``python -m helpers.report --help``)."""
