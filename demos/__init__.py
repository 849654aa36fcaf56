"""Runnable end-to-end demonstrations of the project (docs/demo.md).

python -m demos.clone_chaser      # record a bot through the ingest server, clone it, export it
"""
