"""Local mode: the pipeline's real services (PostgreSQL, Kafka, Apicurio Registry, Cassandra, Spark,
Airflow) run as plain processes on one machine, under a git-ignored state folder."""
