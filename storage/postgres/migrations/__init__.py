"""PostgreSQL's numbered SQL migrations, applied in order at start-up."""
