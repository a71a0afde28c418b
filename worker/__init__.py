"""TIP Watch: the pipeline (ingest → extract → alerts), storage, the CLI and the web UI."""
