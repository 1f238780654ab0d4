"""A tiny Spark job that proves the jar set: read a Kafka topic, write Cassandra via the connector.

Usage: spark-submit kafka_to_cassandra_smoke.py \
    BOOTSTRAP TOPIC CASSANDRA_HOST CASSANDRA_PORT KEYSPACE TABLE
with the Cassandra login in USERSTREAM_CASSANDRA_USERNAME and USERSTREAM_CASSANDRA_PASSWORD.
"""

import os
import sys

from pyspark.sql import SparkSession
from pyspark.sql.functions import col

bootstrap, topic, host, port, keyspace, table = sys.argv[1:7]
spark = (SparkSession.builder.appName("userstream-jar-smoke")
         .config("spark.cassandra.connection.host", host)
         .config("spark.cassandra.connection.port", port)
         .config("spark.cassandra.auth.username", os.environ["USERSTREAM_CASSANDRA_USERNAME"])
         .config("spark.cassandra.auth.password", os.environ["USERSTREAM_CASSANDRA_PASSWORD"])
         .getOrCreate())
messages = (spark.read.format("kafka")
            .option("kafka.bootstrap.servers", bootstrap)
            .option("subscribe", topic)
            .option("startingOffsets", "earliest")
            .option("endingOffsets", "latest")
            .load())
rows = messages.select(col("key").cast("string").alias("id"),
                       col("value").cast("string").alias("body"),
                       col("offset").alias("kafka_offset"))
(rows.write.format("org.apache.spark.sql.cassandra")
 .options(keyspace=keyspace, table=table).mode("append").save())
print(f"SMOKE_ROWS_WRITTEN={rows.count()}")
spark.stop()
