#!/usr/bin/env python3
"""Where one write's time goes (issue 21): N notes posted one after another as the city
coordinator to a running `zhzj up --demo`, each waiting for the read views (the API's default),
then the stage histograms read from the process's /metrics: the gateway's NATS round trip, the
service's handling and append, each projection's delivery (the service's stamp to the batch's
arrival), transaction and commit, and the gateway's wait for the views. Means per write, in ms.

    deploy/bench/write-path-breakdown.py http://127.0.0.1:PORT METRICS_URL [N]
"""
import json, re, statistics, sys, time, urllib.request

base, metrics_url = sys.argv[1], sys.argv[2]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 300


def call(path, body=None, token=None):
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = "Bearer " + token
    data = json.dumps(body).encode() if body is not None else None
    return json.load(urllib.request.urlopen(urllib.request.Request(base + path, data=data, headers=headers)))


def scrape():
    sums = {}
    for line in urllib.request.urlopen(metrics_url).read().decode().splitlines():
        m = re.match(r'^(zhzj_[a-z_]+_seconds)_(sum|count)(\{[^}]*\})? ([0-9.e+-]+)$', line)
        if m:
            key = m.group(1) + (m.group(3) or "")
            sums.setdefault(key, [0.0, 0.0])[0 if m.group(2) == "sum" else 1] += float(m.group(4))
    return sums


token = call("/api/v1/session", {"username": "xietiao", "password": "zhzj-demo-2026"})["token"]
case = call("/api/v1/checklist?per_page=1", token=token)["rows"][0]["case_id"]
for _ in range(20):  # warm up
    call(f"/api/v1/cases/{case}/notes", {"text": "预热"}, token)
before = scrape()
times = []
for i in range(n):
    t = time.perf_counter()
    reply = call(f"/api/v1/cases/{case}/notes", {"text": f"调度记录{i}"}, token)
    times.append((time.perf_counter() - t) * 1000)
    assert reply.get("visible") is True, reply
after = scrape()
times.sort()
print(f"{n} notes, one at a time, each visible: p50 {statistics.median(times):.2f} ms, "
      f"p99 {times[int(n * 0.99) - 1]:.2f} ms, mean {statistics.mean(times):.2f} ms")
for key in sorted(after):
    s, c = after[key]
    s0, c0 = before.get(key, [0.0, 0.0])
    if c - c0 > 0:
        print(f"  {key:70s} {int(c - c0):6d} × {1000 * (s - s0) / (c - c0):8.3f} ms "
              f"= {1000 * (s - s0) / n:8.3f} ms per write")
