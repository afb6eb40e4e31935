#!/usr/bin/env bash
# Compares the assessments computed from the figures projection with those folded from the event
# archive, on a copy of a stopped zhzj's SQLite read store: every period, level, scheme and
# position below, through `zhzj assess`. The copy's figures checkpoint is set to 0 for the second
# pass, so the same command folds the archive instead. Prints "identical" or the differences.
#
#   deploy/compare-figure-routes.sh target/release/zhzj DATA_DIR [POSITION …]
set -euo pipefail
zhzj=$1
data_dir=$2
shift 2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$data_dir/zhzj.sqlite" "$work/zhzj.sqlite"
last=$(sqlite3 "$work/zhzj.sqlite" "SELECT MAX(position) FROM event_archive")
positions=("$@")
if [ ${#positions[@]} -eq 0 ]; then
    positions=($((last / 8)) $((last / 3)) $((last / 2)) $((last * 3 / 4)) "$last")
fi
periods=(2026-01-01:2026-01-31 2026-03-01:2026-03-31 2026-06-01:2026-06-30
    2026-09-01:2026-09-30 2026-11-01:2026-11-30 2026-12-01:2026-12-31
    2026-10-01:2026-12-31 2026-01-01:2026-12-31)

assess_all() {
    for position in "${positions[@]}"; do
        for level in district town department; do
            for period in "${periods[@]}"; do
                for scheme in default dachuan; do
                    echo "== $position $level $period $scheme"
                    "$zhzj" assess --database-url "sqlite://$work/zhzj.sqlite" --level "$level" \
                        --from "${period%:*}" --to "${period#*:}" --position "$position" \
                        --scheme "$scheme" 2>&1 | grep -v '^20..-..-..T' || true
                done
            done
        done
    done
}

assess_all >"$work/projection.txt"
sqlite3 "$work/zhzj.sqlite" "UPDATE projection_checkpoints SET position = 0 WHERE projection = 'figures'"
assess_all >"$work/archive.txt"
if cmp -s "$work/projection.txt" "$work/archive.txt"; then
    echo "identical: $(grep -c '^==' "$work/projection.txt") assessments at positions ${positions[*]} (last $last)"
else
    diff "$work/projection.txt" "$work/archive.txt" | head -40
    exit 1
fi
