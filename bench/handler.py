"""The reference a user writes today: a Python Lambda handler for NAT Gateway attribution.

b64decode, gzip, json.loads, split each record into a dict, apply the (A)/(D) rules, sum per
source in a dict. `natmeter bench` runs it on the same events as natmeter and compares.

    python3 bench/handler.py --format-file F --nat-gateways-file G [--repeat N] EVENT_FILE...

Prints one JSON object: seconds spent in the handler, decoded bytes, records, total bytes.
"""
import argparse
import base64
import gzip
import json
import sys
import time


def make_handler(fields, gateways):
    nat_ips = {g["eni"]: set(g["private_ips"]) for g in gateways}

    def handler(event):
        payload = json.loads(gzip.decompress(base64.b64decode(event["awslogs"]["data"])))
        stream = payload.get("logStream", "")
        totals = {}
        records = 0
        for ev in payload["logEvents"]:
            records += 1
            values = ev["message"].split()
            if len(values) != len(fields):
                continue
            rec = dict(zip(fields, values))
            ips = nat_ips.get(rec.get("interface-id"))
            if ips is None or rec.get("log-status") != "OK" or rec.get("action") == "REJECT":
                continue
            src, dst = rec["srcaddr"], rec["dstaddr"]
            psrc, pdst = rec["pkt-srcaddr"], rec["pkt-dstaddr"]
            if dst in ips and pdst != dst:
                who = psrc
            elif src in ips and psrc != src:
                who = pdst
            else:
                continue
            try:
                n = int(rec["bytes"])
            except ValueError:
                continue
            totals[who] = totals.get(who, 0) + n
        return {"stream": stream, "records": records, "totals": totals}

    return handler


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--format-file", required=True)
    ap.add_argument("--nat-gateways-file", required=True)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()
    fields = [f[2:-1] for f in open(a.format_file).read().split()]
    handler = make_handler(fields, json.load(open(a.nat_gateways_file)))
    events = [open(f, "rb").read() for f in a.files]
    decoded = sum(len(gzip.decompress(base64.b64decode(json.loads(e)["awslogs"]["data"]))) for e in events)
    records = 0
    total = 0
    start = time.perf_counter()
    for _ in range(a.repeat):
        for raw in events:
            out = handler(json.loads(raw))
            records += out["records"]
            total += sum(out["totals"].values())
    seconds = time.perf_counter() - start
    json.dump({"seconds": seconds, "decoded_bytes": decoded * a.repeat, "records": records, "bytes": total}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
