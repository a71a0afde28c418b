"""Stage 3: from archived bytes to text, metadata and keywords — one job, run in the poll or on
the ``extract`` queue."""
