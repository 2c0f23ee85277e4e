#!/usr/bin/env bash
# Compares two natmeter builds on `natmeter bench`, in one run on this machine:
#   bench/compare.sh OLD_BIN NEW_BIN [bench options...]
# The two benches run alternately (old, new, old, new: ROUNDS pairs, default 2), so both meet the
# same load; each case keeps its best natmeter rate per build, and the table gives new / old.
# Rates only (MB/s, M lines/s): higher is better, and a ratio below 1 is a slowdown.
set -euo pipefail
old=$1 new=$2
shift 2
rounds=${ROUNDS:-2}
out=$(mktemp -d)
for i in $(seq 1 "$rounds"); do
  for which in old new; do
    bin=$old; [ "$which" = new ] && bin=$new
    echo "compare: round $i, $which ($bin)" >&2
    "$bin" bench --dir "$out/inputs-$which" "$@" > "$out/$which-$i.md" 2> "$out/$which-$i.err" \
      || { cat "$out/$which-$i.err" >&2; exit 1; }
  done
done
python3 - "$out" "$rounds" <<'PY'
import sys, re
out, rounds = sys.argv[1], int(sys.argv[2])
# (table header marker, column of the name, column of the thread count or None, column of the rate)
tables = [("| case | threads | decoded MB", 0, 1, 5, "natmeter MB/s"),
          ("| case | threads | MB | lines", 0, 1, 4, "natmeter M lines/s"),
          ("| gzip of |", 0, None, 3, "framing MB/s")]
def rates(path):
    got, cur = {}, None
    for line in open(path):
        if not line.startswith("|"):
            cur = None
            continue
        for t in tables:
            if line.startswith(t[0]):
                cur = t
                break
        else:
            if cur and not line.startswith("|---"):
                cells = [c.strip() for c in line.strip().strip("|").split("|")]
                name = cells[cur[1]] + (f" ({cells[cur[2]]} threads)" if cur[2] is not None else "")
                got[(cur[4], name)] = float(cells[cur[3]])
    return got
best = {"old": {}, "new": {}}
for which in best:
    for i in range(1, rounds + 1):
        for k, v in rates(f"{out}/{which}-{i}.md").items():
            best[which][k] = max(best[which].get(k, 0.0), v)
print("| case | rate | old | new | new / old |")
print("|---|---|--:|--:|--:|")
for k in best["old"]:
    o, n = best["old"][k], best["new"].get(k)
    if n is None:
        continue
    print(f"| {k[1]} | {k[0]} | {o:g} | {n:g} | {n / o:.3f} |")
PY
echo "compare: raw outputs in $out" >&2
