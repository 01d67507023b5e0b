"""Local mode: the AWS pipeline on one machine, with no AWS account.

A folder is the lake, a local SparkSession runs the same Glue job, the real Lambda handler
is called with the S3 event a manifest would send, and DuckDB views stand in for the Glue
Data Catalog and Athena. Everything local lives here, on top: nothing in b3_quotes/contract/,
b3_quotes/config/, scraper/ (but its command line), etl/ or lambdas/ imports it.
"""
