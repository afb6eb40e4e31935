#!/usr/bin/env python3
"""Times GETs of a running zhzj as demo users: for each USER and PATH, N requests one after the
other, printing p50, p90 and the answer's size. API paths (/api/…) are sent with the user's
bearer token, pages with the session cookie, as a browser would.

    deploy/bench/read-latency.py http://127.0.0.1:PORT N USER[,USER…] PATH [PATH …]

e.g. deploy/bench/read-latency.py http://127.0.0.1:18948 20 xietiao,siming /api/v1/warnings /warnings /inbox
"""
import json, sys, time, urllib.request

base, n, users, paths = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(","), sys.argv[4:]


def login(user):
    request = urllib.request.Request(
        base + "/api/v1/session",
        data=json.dumps({"username": user, "password": "zhzj-demo-2026"}).encode(),
        headers={"content-type": "application/json"},
    )
    return json.load(urllib.request.urlopen(request))["token"]


for user in users:
    token = login(user)
    for path in paths:
        if path.startswith("/api/"):
            headers = {"authorization": "Bearer " + token}
        else:
            headers = {"cookie": "zhzj_session=" + token}
        times, body = [], b""
        for _ in range(n):
            started = time.perf_counter()
            body = urllib.request.urlopen(urllib.request.Request(base + path, headers=headers)).read()
            times.append((time.perf_counter() - started) * 1000)
        times.sort()
        p90 = times[max(0, int(len(times) * 0.9) - 1)]
        print(f"{user:8s} {path}: p50 {times[len(times) // 2]:.1f} ms, p90 {p90:.1f} ms, {len(body)} B")
