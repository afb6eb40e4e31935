#!/usr/bin/env python3
"""GET /api/v1/leaders?inactive_days=30 as the city coordinator (xietiao) and a district
coordinator (siming) of the demo, N times each: p50, p90, max and the answer's size; each answer
is saved to /tmp/leaders_<user>_<label>.json to compare two builds.

    deploy/bench/leader-view-latency.py http://127.0.0.1:PORT [N] [label]
"""
import json, sys, time, urllib.request, statistics
base = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 50
def login(user):
    r = urllib.request.Request(base + "/api/v1/session", data=json.dumps({"username": user, "password": "zhzj-demo-2026"}).encode(), headers={"content-type": "application/json"})
    return json.load(urllib.request.urlopen(r))["token"]
total = None
for user in ["xietiao", "siming"]:
    h = {"authorization": "Bearer " + login(user)}
    if total is None:
        total = json.load(urllib.request.urlopen(urllib.request.Request(base + "/api/v1/checklist?per_page=1", headers=h)))["total"]
        acts = None
    for path in ["/api/v1/leaders?inactive_days=30"]:
        times = []
        body = b""
        for _ in range(n):
            t = time.perf_counter()
            body = urllib.request.urlopen(urllib.request.Request(base + path, headers=h)).read()
            times.append((time.perf_counter() - t) * 1000)
        times.sort()
        v = json.loads(body)
        print(f"{user:8s} {path}: cases {total}, leaders {len(v['leaders'])}, p50 {statistics.median(times):.1f} ms, p90 {times[int(len(times)*0.9)-1]:.1f} ms, max {times[-1]:.1f} ms, {len(body)} bytes")
        open(f"/tmp/leaders_{user}_{sys.argv[3] if len(sys.argv)>3 else 'x'}.json","wb").write(body)
