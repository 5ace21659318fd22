"""`ztpd analyze` on Spark: per device, the count of readings, min/mean/max
latitude and longitude, the battery of the latest reading, and the name the
latest reading gives, computed by real Spark (local mode) from the MongoDB
collection the bridge writes.

    python3 examples/spark/analyze.py [--format json] [MONGODB_URI [DATABASE [COLLECTION]]]

Defaults: mongodb://127.0.0.1:27017, db_elastacloud, collection_elastacloud
(ztpd's `[telemetry]` defaults). `--format json` prints the same document as
`ztpd analyze --format json` (SPEC section 10); without it, a table. Spark's
own log lines go to stderr, the result alone to stdout. Install with
`scripts/install-test-deps.sh` (the `.venv-spark` venv, Java 17) and run with
`.venv-spark/bin/python examples/spark/analyze.py`.

The collection is read through a Spark Python data source
(`pyspark.sql.datasource.DataSource`, Spark 4) that uses pymongo: the
devices are split into partitions balanced by their number of readings,
and each partition is one query (`device_id $in [...]`) run by a Spark
worker. On a cluster, read through the MongoDB Spark connector instead: see
examples/spark/README.md.

How the numbers match `ztpd analyze`:
- rows are ordered by device_id, one per device with at least one reading;
- `latest` is by signal_date (as stored: a BSON date, milliseconds), ties
  broken by `_id` (which carries the microseconds);
- min/mean/max of a coordinate are over the readings that carry it (null
  when none does); `last_battery` is from the latest reading that has one;
- the mean is the correctly rounded sum (math.fsum) divided by the count,
  so it does not depend on how the rows were split into partitions.
"""

import argparse
import json
import math
import os
import sys

DEFAULT_URI = "mongodb://127.0.0.1:27017"
DEFAULT_DATABASE = "db_elastacloud"
DEFAULT_COLLECTION = "collection_elastacloud"

# The columns the data source gives Spark. device_name is kept as its JSON
# text, so that an integer name (1000001) and a text one ("pump-3") come
# back as they were stored.
SCHEMA = (
    "_id string, device_id string, device_name_json string, "
    "device_latitude double, device_longitude double, "
    "device_battery_level double, signal_ms long"
)


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Per-device telemetry statistics on Spark, as `ztpd analyze`."
    )
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.add_argument("--partitions", type=int, default=0,
                   help="read partitions (default: Spark's default parallelism)")
    p.add_argument("uri", nargs="?", default=DEFAULT_URI)
    p.add_argument("database", nargs="?", default=DEFAULT_DATABASE)
    p.add_argument("collection", nargs="?", default=DEFAULT_COLLECTION)
    a = p.parse_args(argv)
    if a.partitions < 0:
        p.error("--partitions: expected a whole number of at least 1 (0: Spark's default)")
    return a


def balanced_partitions(counts, n):
    """Split {device_id: readings} into at most n lists of device ids,
    largest first onto the least loaded list (a device is never split, so
    each of its readings is in one partition)."""
    bins = [[0, i, []] for i in range(max(1, min(n, len(counts))))]
    for device, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        b = min(bins, key=lambda b: (b[0], b[1]))
        b[2].append(device)
        b[0] += count
    return [sorted(ids) for _, _, ids in bins if ids]


def number(v):
    """A BSON number as a float; anything else (missing, text) as None."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v)


def make_source():
    from pyspark.sql.datasource import DataSource, DataSourceReader, InputPartition

    class DevicesPartition(InputPartition):
        def __init__(self, devices):
            super().__init__(devices)
            self.devices = devices

    class TelemetryReader(DataSourceReader):
        def __init__(self, options):
            self.uri = options.get("uri", DEFAULT_URI)
            self.database = options.get("database", DEFAULT_DATABASE)
            self.collection = options.get("collection", DEFAULT_COLLECTION)
            self.partition_count = int(options.get("partitions", "2"))

        def _collection(self, client):
            return client[self.database][self.collection]

        def partitions(self):
            import pymongo

            with pymongo.MongoClient(self.uri) as client:
                rows = self._collection(client).aggregate(
                    [{"$group": {"_id": "$device_id", "n": {"$sum": 1}}}]
                )
                counts = {r["_id"]: r["n"] for r in rows if isinstance(r["_id"], str)}
            return [DevicesPartition(ids)
                    for ids in balanced_partitions(counts, self.partition_count)]

        def read(self, partition):
            import pymongo
            from bson.codec_options import DatetimeConversion

            fields = ["device_id", "device_name", "device_latitude",
                      "device_longitude", "device_battery_level", "signal_date"]
            with pymongo.MongoClient(
                self.uri, datetime_conversion=DatetimeConversion.DATETIME_MS
            ) as client:
                cursor = self._collection(client).find(
                    {"device_id": {"$in": partition.devices}},
                    {f: 1 for f in fields},
                )
                for d in cursor:
                    name = d.get("device_name")
                    date = d.get("signal_date")
                    yield (
                        str(d.get("_id")),
                        d["device_id"],
                        None if name is None else json.dumps(name),
                        number(d.get("device_latitude")),
                        number(d.get("device_longitude")),
                        number(d.get("device_battery_level")),
                        None if date is None else int(date),
                    )

    class TelemetrySource(DataSource):
        """`spark.read.format("ztpd_telemetry")`: the bridge's collection."""

        @classmethod
        def name(cls):
            return "ztpd_telemetry"

        def schema(self):
            return SCHEMA

        def reader(self, schema):
            return TelemetryReader(self.options)

    return TelemetrySource


def analyze(spark, uri, database, collection, partitions):
    from pyspark.sql import Window
    from pyspark.sql import functions as F
    import pandas as pd
    from pyspark.sql.functions import pandas_udf

    # Series -> float: a grouped aggregate (Spark picks the kind from the hints).
    @pandas_udf("double")
    def exact_mean(v: pd.Series) -> float:
        v = v.dropna()
        return math.fsum(v) / len(v) if len(v) else None

    spark.dataSource.register(make_source())
    readings = (
        spark.read.format("ztpd_telemetry")
        .option("uri", uri)
        .option("database", database)
        .option("collection", collection)
        .option("partitions", str(partitions))
        .load()
    )
    newest_first = [F.col("signal_ms").desc_nulls_last(), F.col("_id").desc()]
    latest = Window.partitionBy("device_id").orderBy(*newest_first)
    names = (
        readings.withColumn("rank", F.row_number().over(latest))
        .where(F.col("rank") == 1)
        .select("device_id", "device_name_json")
    )
    battery = (
        readings.where(F.col("device_battery_level").isNotNull())
        .withColumn("rank", F.row_number().over(latest))
        .where(F.col("rank") == 1)
        .select("device_id", F.col("device_battery_level").alias("last_battery"))
    )
    stats = readings.groupBy("device_id").agg(
        F.count(F.lit(1)).alias("count"),
        F.min("device_latitude").alias("latitude_min"),
        F.max("device_latitude").alias("latitude_max"),
        F.min("device_longitude").alias("longitude_min"),
        F.max("device_longitude").alias("longitude_max"),
    )
    # Spark does not mix pandas aggregates with its own in one groupBy.
    means = readings.groupBy("device_id").agg(
        exact_mean("device_latitude").alias("latitude_mean"),
        exact_mean("device_longitude").alias("longitude_mean"),
    )
    rows = (
        stats.join(means, "device_id")
        .join(names, "device_id", "left")
        .join(battery, "device_id", "left")
        .collect()
    )
    return [to_json_row(r) for r in sorted(rows, key=lambda r: r["device_id"])]


def to_json_row(r):
    """One row in the shape of `ztpd analyze --format json` (SPEC section 10)."""

    def stat(prefix):
        if r[prefix + "_min"] is None:
            return None
        return {"min": r[prefix + "_min"], "mean": r[prefix + "_mean"],
                "max": r[prefix + "_max"]}

    name = r["device_name_json"]
    return {
        "device_id": r["device_id"],
        "device_name": None if name is None else json.loads(name),
        "count": r["count"],
        "latitude": stat("latitude"),
        "longitude": stat("longitude"),
        "last_battery": r["last_battery"],
    }


def table(rows):
    head = ["device_id", "name", "count", "lat min", "lat mean", "lat max",
            "lon min", "lon mean", "lon max", "battery"]

    def f6(s, k):
        return "-" if s is None else "%.6f" % s[k]

    body = []
    for r in rows:
        name = r["device_name"]
        body.append([
            r["device_id"], "" if name is None else str(name), str(r["count"]),
            f6(r["latitude"], "min"), f6(r["latitude"], "mean"), f6(r["latitude"], "max"),
            f6(r["longitude"], "min"), f6(r["longitude"], "mean"), f6(r["longitude"], "max"),
            "-" if r["last_battery"] is None else "%.2f" % r["last_battery"],
        ])
    widths = [max(len(c) for c in col) for col in zip(head, *body)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()
             for row in [head] + body]
    if not rows:
        lines.append("(no telemetry stored yet)")
    return "\n".join(lines) + "\n"


def main(argv):
    args = parse_args(argv)
    # Spark's Python workers run this interpreter (the venv's), not PATH's.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    # Local mode stays on loopback (Spark would pick the first interface).
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master(os.environ.get("SPARK_MASTER", "local[2]"))
        .appName("ztpd-telemetry-analysis")
        # Several runs may share a machine (tests in parallel): no web UI port,
        # the driver on loopback, no progress bar mixed into the output.
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.sql.shuffle.partitions", "4")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("WARN")
    try:
        partitions = args.partitions or spark.sparkContext.defaultParallelism
        rows = analyze(spark, args.uri, args.database, args.collection, partitions)
    finally:
        spark.stop()
    if args.format == "json":
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
    else:
        sys.stdout.write(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
