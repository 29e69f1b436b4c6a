#!/usr/bin/env bash
# Daily event files for this example: one folder per day (`events/day=YYYY-MM-DD/part.csv`)
# and `users.csv`, the same bytes on every machine (awk's generator, seeded by the day).
#
#   examples/events/generate.sh [--days N] [--rows R] [--users U] [--start YYYY-MM-DD] [--out DIR]
#   examples/events/generate.sh --append [--rows R] [--out DIR]     # the day after the newest one there
#
# Defaults: 365 days of 2,000 events from 2026-01-01, 5,000 users, into examples/events/data.
set -euo pipefail

days=365 rows=2000 users=5000 start=2026-01-01 append=false
out="$(cd "$(dirname "$0")" && pwd)/data"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --days) days="$2"; shift 2 ;;
        --rows) rows="$2"; shift 2 ;;
        --users) users="$2"; shift 2 ;;
        --start) start="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --append) append=true; shift ;;
        *) echo "examples/events/generate.sh: unknown argument $1 (see the top of the script)" >&2; exit 2 ;;
    esac
done

mkdir -p "$out/events"
if $append; then
    newest=$(ls "$out/events" | sed -n 's/^day=//p' | sort | tail -1)
    if [[ -z "$newest" ]]; then
        echo "examples/events/generate.sh: no day in $out/events to append to; run without --append first" >&2
        exit 2
    fi
    first=$(date -u -d "$newest + 1 day" +%F)
    days=1
    users=$(($(wc -l < "$out/users.csv") - 1))
else
    first="$start"
    awk -v n="$users" 'BEGIN {
        srand(7); split("fr de it es pl nl se us br jp", c, " "); split("free pro team", p, " ")
        print "user_id,country,plan"
        for (i = 1; i <= n; i++) printf "%d,%s,%s\n", i, c[int(rand() * 10) + 1], p[int(rand() * 3) + 1]
    }' > "$out/users.csv"
fi

for ((i = 0; i < days; i++)); do
    day=$(date -u -d "$first + $i day" +%F)
    seed=$(date -u -d "$day" +%s)
    mkdir -p "$out/events/day=$day"
    awk -v n="$rows" -v users="$users" -v seed="$seed" -v day="$day" 'BEGIN {
        srand(seed / 86400); split("view view view view click click buy", k, " ")
        print "event_id,user_id,kind,amount,ts"
        for (i = 1; i <= n; i++) {
            kind = k[int(rand() * 7) + 1]
            amount = kind == "buy" ? 5 + rand() * 195 : 0
            s = int(rand() * 86400)
            printf "%s-%d,%d,%s,%.2f,%s %02d:%02d:%02d\n", day, i, int(rand() * users) + 1, kind, amount, day, s / 3600, (s % 3600) / 60, s % 60
        }
    }' > "$out/events/day=$day/part.csv"
done
echo "examples/events/generate.sh: $days day(s) of $rows events from $first in $out/events"
