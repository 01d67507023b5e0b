"""Test stand-in for AWS Glue's `awsglue` package (see ../README.md)."""
