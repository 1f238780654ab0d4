"""A tiny Spark job that proves the jar set: read a Kafka topic, write Cassandra via the connector.

Usage: spark-submit kafka_to_cassandra_smoke.py \
    BOOTSTRAP TOPIC CASSANDRA_HOST CASSANDRA_PORT KEYSPACE TABLE
with the stream job's logins in the environment (as `spark/stream_users.py` reads them).
"""

import sys
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql.functions import col

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "spark"))
from stream_users import cassandra_login, kafka_login

bootstrap, topic, host, port, keyspace, table = sys.argv[1:7]
spark = (SparkSession.builder.appName("userstream-jar-smoke")
         .config("spark.cassandra.connection.host", host)
         .config("spark.cassandra.connection.port", port)
         .config(map=cassandra_login())
         .getOrCreate())
messages = (spark.read.format("kafka")
            .option("kafka.bootstrap.servers", bootstrap)
            .option("subscribe", topic)
            .option("startingOffsets", "earliest")
            .option("endingOffsets", "latest")
            .options(**kafka_login())
            .load())
rows = messages.select(col("key").cast("string").alias("id"),
                       col("value").cast("string").alias("body"),
                       col("offset").alias("kafka_offset"))
(rows.write.format("org.apache.spark.sql.cassandra")
 .options(keyspace=keyspace, table=table).mode("append").save())
print(f"SMOKE_ROWS_WRITTEN={rows.count()}")
spark.stop()
