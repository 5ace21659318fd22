"""The prototype's Spark analysis on ztpd's telemetry, through the MongoDB
Spark connector: per device, count, min/mean/max latitude and longitude, and
the battery of the latest reading. The same numbers as `ztpd analyze`, for
data that outgrew one machine.

    spark-submit \
      --packages org.mongodb.spark:mongo-spark-connector_2.12:10.4.0 \
      examples/spark/analyze.py mongodb://127.0.0.1:27017 [db_elastacloud] [collection_elastacloud]

Spark is not needed by ztpd or its tests.
"""
import sys

from pyspark.sql import SparkSession, Window
from pyspark.sql import functions as F

uri = sys.argv[1] if len(sys.argv) > 1 else "mongodb://127.0.0.1:27017"
database = sys.argv[2] if len(sys.argv) > 2 else "db_elastacloud"
collection = sys.argv[3] if len(sys.argv) > 3 else "collection_elastacloud"

spark = (
    SparkSession.builder.appName("ztpd-telemetry-analysis")
    .config("spark.mongodb.read.connection.uri", uri)
    .getOrCreate()
)
readings = (
    spark.read.format("mongodb")
    .option("database", database)
    .option("collection", collection)
    .load()
)

latest = Window.partitionBy("device_id").orderBy(F.col("signal_date").desc())
last_battery = (
    readings.where(F.col("device_battery_level").isNotNull())
    .withColumn("rank", F.row_number().over(latest))
    .where(F.col("rank") == 1)
    .select("device_id", F.col("device_battery_level").alias("last_battery"))
)
stats = readings.groupBy("device_id").agg(
    F.count(F.lit(1)).alias("count"),
    F.min("device_latitude").alias("latitude_min"),
    F.avg("device_latitude").alias("latitude_mean"),
    F.max("device_latitude").alias("latitude_max"),
    F.min("device_longitude").alias("longitude_min"),
    F.avg("device_longitude").alias("longitude_mean"),
    F.max("device_longitude").alias("longitude_max"),
)
stats.join(last_battery, "device_id", "left").orderBy("device_id").show(truncate=False)
spark.stop()
