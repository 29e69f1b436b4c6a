#!/usr/bin/env python3
"""The DuckDB baseline of scripts/bench: the TPC-H pipeline's 32 statements on bare DuckDB.

As the bare DataFusion baseline does, each of the 8 Parquet files is copied with `COPY (...) TO`
into `<out>/raw/` (weir copying it into its store) and schema `raw` gets a view over the copy;
with `--in-place` the views are over the files themselves and nothing is copied (weir's
`copy: false`). Then the 2 prep statements and the 22 queries each write their result as Parquet
with `COPY (...) TO`, as weir writes each table, and prep's are read back from those files. The SQL
is read from the example's files and changed only as DuckDB needs: the trailing `;` goes, since
the query sits inside COPY (...).

Run by `weir-bench run` as a child process, so its wall time and peak RSS are measured like
weir's. Prints one JSON object: each statement's seconds and rows, and the 22 queries' total.

With `--rebuild` it measures what `weir run --select stage:marts --force` does instead: the 8
files and the 2 prep tables are first made DuckDB's own tables (untimed), then the 22 queries run
twice in turn, as `CREATE OR REPLACE TABLE marts.qNN AS ...` (DuckDB's native storage, nothing
written out) and as `COPY (...) TO` Parquet (LZ4, as weir writes), each query timed.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import duckdb

TABLES = ["lineitem", "orders", "customer", "part", "partsupp", "supplier", "nation", "region"]
PREP = ["lineitem_enriched", "partsupp_value"]


def sql_text(path: Path) -> str:
    return path.read_text().strip().rstrip(";").rstrip()


def quoted(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--example", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--memory-limit", help="DuckDB's memory_limit, e.g. 1GiB")
    ap.add_argument(
        "--in-place", action="store_true", help="read the 8 files where they are, copy nothing"
    )
    ap.add_argument(
        "--rebuild", action="store_true", help="time only the 22 queries, over DuckDB's own tables"
    )
    args = ap.parse_args()
    if args.rebuild:
        return rebuild(args)

    con = duckdb.connect()  # in memory: the tables live as long as the run, like a bare session
    # Its spill files go under --out, which the bench clears, rather than into the working folder.
    con.execute(f"SET temp_directory = {quoted(args.out / 'duckdb.tmp')}")
    if args.memory_limit:
        con.execute(f"SET memory_limit = '{args.memory_limit}'")
    for schema in ["raw", "prep", "marts"]:
        con.execute(f"CREATE SCHEMA {schema}")
        (args.out / schema).mkdir(parents=True, exist_ok=True)
    # The queries name bare tables (`FROM lineitem`): the raw ones, as in weir.
    con.execute("USE raw")

    statements = []

    def timed(stage: str, table: str, sql: str) -> None:
        start = time.perf_counter()
        rows = con.execute(sql).fetchone()
        statements.append(
            {
                "task": f"{stage}.{table}",
                "s": time.perf_counter() - start,
                "rows": int(rows[0]) if rows else None,
            }
        )

    def copy(stage: str, table: str, query: str) -> None:
        # LZ4_RAW, as weir writes Parquet by default; DuckDB's default is snappy.
        target = quoted(args.out / stage / f"{table}.parquet")
        timed(stage, table, f"COPY ({query}) TO {target} (FORMAT parquet, COMPRESSION lz4_raw)")

    def view(stage: str, table: str, file: Path) -> None:
        con.execute(f"CREATE VIEW {stage}.{table} AS SELECT * FROM read_parquet({quoted(file)})")

    for t in TABLES:
        source = args.data / f"{t}.parquet"
        if args.in_place:
            start = time.perf_counter()
            view("raw", t, source)
            rows = con.execute(f"SELECT count(*) FROM raw.{t}").fetchone()[0]
            statements.append({"task": f"raw.{t}", "s": time.perf_counter() - start, "rows": rows})
        else:
            copy("raw", t, f"SELECT * FROM read_parquet({quoted(source)})")
            view("raw", t, args.out / "raw" / f"{t}.parquet")
    for t in PREP:
        copy("prep", t, sql_text(args.example / "prep" / f"{t}.sql"))
        view("prep", t, args.out / "prep" / f"{t}.parquet")
    for q in range(1, 23):
        name = f"q{q:02}"
        copy("marts", name, sql_text(args.example / "queries" / f"{name}.sql"))

    marts = sum(s["s"] for s in statements if s["task"].startswith("marts."))
    json.dump(
        {"duckdb": duckdb.__version__, "statements": statements, "marts_s": marts},
        sys.stdout,
    )
    print()
    return 0


def rebuild(args: argparse.Namespace) -> int:
    con = duckdb.connect()
    con.execute(f"SET temp_directory = {quoted(args.out / 'duckdb.tmp')}")
    if args.memory_limit:
        con.execute(f"SET memory_limit = '{args.memory_limit}'")
    for schema in ["raw", "prep", "marts"]:
        con.execute(f"CREATE SCHEMA {schema}")
    con.execute("USE raw")
    for t in TABLES:
        source = quoted(args.data / f"{t}.parquet")
        con.execute(f"CREATE TABLE raw.{t} AS SELECT * FROM read_parquet({source})")
    for t in PREP:
        con.execute(f"CREATE TABLE prep.{t} AS {sql_text(args.example / 'prep' / f'{t}.sql')}")
    (args.out / "marts").mkdir(parents=True, exist_ok=True)
    ways = {
        "ctas": lambda name, q: f"CREATE OR REPLACE TABLE marts.{name} AS {q}",
        "copy": lambda name, q: (
            f"COPY ({q}) TO {quoted(args.out / 'marts' / f'{name}.parquet')} "
            "(FORMAT parquet, COMPRESSION lz4_raw)"
        ),
    }
    out = {"duckdb": duckdb.__version__}
    for way, statement in ways.items():
        timed = []
        for q in range(1, 23):
            name = f"q{q:02}"
            sql = statement(name, sql_text(args.example / "queries" / f"{name}.sql"))
            start = time.perf_counter()
            con.execute(sql).fetchall()
            timed.append({"task": f"marts.{name}", "s": time.perf_counter() - start})
        out[way] = timed
    json.dump(out, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
