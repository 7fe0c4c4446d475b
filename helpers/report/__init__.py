"""The report: the notebooks' parameters defined once (``parameters``), results read and written one way
(``results``), the environment record (``environment``), and ``chapters/``, one module per notebook with its
experiment, tables, sentences and figures. What several chapters share sits beside them: how they measure
(``measuring``), how figures look (``style``), how numbers are written (``text``), the disk-space table and
figure (``disk_space``), the durability statement (``durability``) and the training-loop advice
(``read_patterns``). ``pipeline`` runs the notebooks with papermill and writes ``report.html`` and
``report.pdf`` (``python -m helpers.report --help``)."""
