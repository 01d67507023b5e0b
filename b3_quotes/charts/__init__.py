"""Charts of the refined tables: queries and pure plotting functions, shared by the command and the notebook.

`b3_quotes.charts.frames` and `b3_quotes.charts.plots` import only pandas, numpy and matplotlib (and run on Python 3.9),
so the Athena Spark notebook can load them from a zip on S3.
"""
