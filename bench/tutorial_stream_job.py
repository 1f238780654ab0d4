"""The public tutorials' Spark job, kept only as the end-to-end benchmark's baseline: JSON values
from Kafka parsed with a hand-written schema and appended to Cassandra, no framing, no registry,
no dead letters, no per-user dedup. Runs in the Spark runtime's Python (submitted by
`bench.pipeline_benchmark`). Its one addition to the tutorials: the Cassandra and Kafka logins
the benchmark passes in the environment (the stack refuses anonymous clients), read as the
pipeline's job reads them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql.functions import col, from_json
from pyspark.sql.types import StringType, StructField, StructType

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "spark"))
from stream_users import cassandra_login, kafka_login

TUTORIAL_FIELDS = ("id", "first_name", "last_name", "gender", "address", "post_code", "email",
                   "username", "dob", "registered_date", "phone", "picture")


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("--bootstrap-servers", "--topic", "--cassandra-host", "--cassandra-port",
                 "--keyspace", "--table", "--checkpoint"):
        parser.add_argument(name, required=True)
    args = parser.parse_args()
    spark = (SparkSession.builder.appName("tutorial-baseline")
             .config("spark.cassandra.connection.host", args.cassandra_host)
             .config("spark.cassandra.connection.port", args.cassandra_port)
             .config(map=cassandra_login())
             .getOrCreate())
    spark.sparkContext.setLogLevel("WARN")
    schema = StructType([StructField(name, StringType()) for name in TUTORIAL_FIELDS])
    users = (spark.readStream.format("kafka")
             .option("kafka.bootstrap.servers", args.bootstrap_servers)
             .option("subscribe", args.topic)
             .option("startingOffsets", "earliest")
             .options(**kafka_login())
             .load()
             .selectExpr("CAST(value AS STRING) AS value")
             .select(from_json(col("value"), schema).alias("data"))
             .select("data.*"))
    query = (users.writeStream.format("org.apache.spark.sql.cassandra")
             .option("checkpointLocation", args.checkpoint)
             .option("keyspace", args.keyspace)
             .option("table", args.table)
             .trigger(availableNow=True)
             .start())
    query.awaitTermination()


if __name__ == "__main__":
    main()
