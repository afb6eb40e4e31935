#!/usr/bin/env python3
"""Tries to recover a petitioner's identity from the masked ID number a case shows, as a signed-in
user who may not see it would (a coordinator of another area, the accused department): read the masked number
(`350***********0423`) off a case, then ask the duplicate check about every ID number it could be
(valid birth dates and check digits only) until one matches.

Stdlib only. Prints one line per kind of answer and a verdict:

    REFUSED   the enumeration learnt nothing: no answer named a case or a person, and none said
              the right number matched (rate-limited, or refused)
    SUCCEEDED an answer named a person or a case, or confirmed the hidden number

Exit status 0 when refused, 1 when it succeeded.

    python3 deploy/security/enumerate_id.py --base http://127.0.0.1:8080 --user chakan \
        --password zhzj-demo-2026 [--case <case id>] [--area 203] [--max 3000]
"""

import argparse
import collections
import datetime
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
CHECK = "10X98765432"


def check_digit(first17):
    return CHECK[sum(int(d) * w for d, w in zip(first17, WEIGHTS)) % 11]


def call(base, path, token=None, body=None):
    request = urllib.request.Request(base + "/api/v1" + path, method="POST" if body else "GET")
    if token:
        request.add_header("Authorization", "Bearer " + token)
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, data, timeout=10) as answer:
            return answer.status, answer.read().decode(), dict(answer.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), dict(error.headers)


def candidates(prefix, suffix, area):
    """Every ID number `prefix + area + birth date + suffix[:3]` with `suffix[3]` as its check digit."""
    day = datetime.date(1940, 1, 1)
    while day <= datetime.date(2005, 12, 31):
        first17 = prefix + area + day.strftime("%Y%m%d") + suffix[:3]
        if check_digit(first17) == suffix[3]:
            yield first17 + suffix[3]
        day += datetime.timedelta(days=1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="http://127.0.0.1:8080")
    parser.add_argument("--user", default="chakan")
    parser.add_argument("--password", default="zhzj-demo-2026")
    parser.add_argument("--case", help="the case whose masked ID to attack (default: the first listed)")
    parser.add_argument("--area", default="203", help="the 3 hidden area digits to try (思明区: 203)")
    parser.add_argument("--max", type=int, default=3000, help="requests at most")
    args = parser.parse_args()

    status, body, _ = call(args.base, "/session", body={"username": args.user, "password": args.password})
    if status not in (200, 201):
        print(f"cannot sign in as {args.user}: {status} {body}")
        return 2
    token = json.loads(body)["token"]
    case_id = args.case
    if not case_id:
        listing = json.loads(call(args.base, "/checklist?per_page=1", token)[1])
        case_id = listing["rows"][0]["case_id"]
    case = json.loads(call(args.base, f"/cases/{case_id}", token)[1])
    masked = next((p.get("id_number") for p in case.get("petitioners", []) if p.get("id_number")), None)
    if not masked or len(masked) != 18:
        print(f"case {case_id} shows no masked ID number: {masked!r}")
        return 2
    name = next((p.get("name") for p in case["petitioners"] if p.get("name")), "")
    surname = name[:1]
    print(f"target: case {case_id}, masked ID {masked}, name shown as {name!r}")

    answers = collections.Counter()
    leaks = []
    confirmed = None
    started = time.monotonic()
    for n, candidate in enumerate(candidates(masked[:3], masked[14:], args.area)):
        if n >= args.max:
            break
        status, body, headers = call(args.base, f"/cases/duplicates?id_number={candidate}", token)
        answers[status] += 1
        if status != 200:
            continue
        found = json.loads(body)
        named = found.get("cases") if isinstance(found, dict) else found
        if named:
            leaks.append((candidate, named))
        if isinstance(found, dict) and found.get("outside_your_area"):
            confirmed = candidate
        text = body
        if surname and surname in text and "*" not in text:
            leaks.append((candidate, "a name in the answer"))
    elapsed = time.monotonic() - started
    for status, count in sorted(answers.items()):
        print(f"  {count:6d} answered {status}")
    print(f"  {sum(answers.values())} requests in {elapsed:.1f} s")
    if leaks or confirmed:
        print(f"SUCCEEDED enumerate-id: named {leaks[:3]}, confirmed {confirmed}")
        return 1
    print("REFUSED enumerate-id: no answer named a case or a person, none confirmed the number")
    return 0


if __name__ == "__main__":
    sys.exit(main())
