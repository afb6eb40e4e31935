#!/usr/bin/env python3
"""A bounded property-based run of Schemathesis over zhzj's OpenAPI document, once per demo user.

Run by deploy/fuzz-api.sh against a running `zhzj up --demo` (with the Python of the venv that
has Schemathesis). For each user it logs in, writes a Schemathesis configuration (the user's
session cookie, and dictionaries of real ids — cases the user can see and a few they cannot,
measures, meetings, instructions, months, quarters, units, leaders — so that generated requests
also reach past the 404 of an unknown id), runs `st run` and reads its NDJSON events. At the end
it prints every distinct failure once (user, operation, check, status got and documented, a curl
line to reproduce it, and for a 5xx the error the zhzj log has under the response's correlation
id) and exits 1 when there is any.

Environment overrides: FUZZ_MAX_EXAMPLES (default 20), FUZZ_SEED (unset: Hypothesis is
derandomized and every run sends the same requests; set: random generation from that seed),
FUZZ_USERS (comma-separated, default the five below; `siming-shenhe`, the district reviewer,
may be added), FUZZ_PHASES (default
examples,coverage,fuzzing,stateful), FUZZ_WORKERS (default 2), FUZZ_CHECKS (default the three
that gate; `all` for every Schemathesis check, to explore).
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import re
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

PASSWORD = "zhzj-demo-2026"
USERS = {
    "admin": "系统管理员",
    "xietiao": "市专班协调员",
    "siming": "思明区专班协调员",
    "shenhe": "市信访局审核员",
    "chakan": "只读查看员",
}
OPTIONAL_USERS = {"siming-shenhe": "思明区联席办审核员"}
# The checks that fail the run. `response_schema_conformance` passes today, so it gates too.
CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance"
# Operations left out, and why:
#  - DELETE /api/v1/session ends the very session the run authenticates with; every later
#    request would be answered 401 (documented everywhere), so the rest of the run would test
#    nothing. Logging out is covered by the gateway's own tests.
EXCLUDED = [("DELETE", "/api/v1/session")]
HERE = Path(__file__).resolve().parent


# --- talking to zhzj -------------------------------------------------------------------------


def call(base: str, method: str, path: str, token: str | None = None, body: dict | None = None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        req.add_header("content-type", "application/json")
    if token:
        req.add_header("Cookie", f"zhzj_session={token}")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, None


def wait_caught_up(base: str, timeout: float = 120) -> None:
    """/readyz answers 200 while the projections are within their bound; wait until every one
    has caught up with the demo (lag 0), so the ids read below are all there."""
    deadline = time.monotonic() + timeout
    while True:
        status, ready = call(base, "GET", "/readyz")
        lags = [re.search(r"lag (\d+)", c.get("detail", "")) for c in (ready or {}).get("checks", [])]
        if status == 200 and all(m is None or m.group(1) == "0" for m in lags):
            return
        if time.monotonic() > deadline:
            print(f"fuzz: projections still lagging after {timeout:.0f} s; going on", flush=True)
            return
        time.sleep(0.5)


def login(base: str, user: str) -> str:
    status, reply = call(base, "POST", "/api/v1/session", body={"username": user, "password": PASSWORD})
    if status != 201:
        sys.exit(f"fuzz: logging in as {user} answered {status}")
    return reply["token"]


def id_number(seq: int) -> str:
    """A well-formed resident ID number on the unassigned area code the demo uses (350299)."""
    born = dt.date(1950, 1, 1) + dt.timedelta(days=137 * seq)
    head = f"350299{born:%Y%m%d}{seq % 1000:03d}"
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    check = "10X98765432"[sum(int(c) * w for c, w in zip(head, weights)) % 11]
    return head + check


def seed_data(base: str, tokens: dict[str, str]) -> dict:
    """Ids the whole run uses, read as admin."""
    admin = tokens["admin"]
    _, rows = call(base, "GET", "/api/v1/checklist?per_page=200", admin)
    cases = [r["case_id"] for r in rows["rows"]]
    _, org = call(base, "GET", "/api/v1/org", admin)
    units = org.get("units", [])
    leaders = [l.get("leader_id") for l in org.get("leaders", []) if l.get("leader_id")]
    _, meetings = call(base, "GET", "/api/v1/meetings", admin)
    meeting_ids = [m["meeting_id"] for m in meetings]
    numbers = set()
    for m in meeting_ids:
        _, detail = call(base, "GET", f"/api/v1/meetings/{urllib.parse.quote(m)}", admin)
        for i in (detail or {}).get("instructions", []):
            numbers.add(str(i["number"]))
    _, bulletins = call(base, "GET", "/api/v1/bulletins", admin)
    _, pushes = call(base, "GET", "/api/v1/pushes", admin)
    today = dt.date.today()
    last_month = (today.replace(day=1) - dt.timedelta(days=1)).strftime("%Y-%m")
    q = (today.month - 1) // 3 + 1
    quarter = f"{today.year}-Q{q}"
    next_quarter = f"{today.year}-Q{q + 1}" if q < 4 else f"{today.year + 1}-Q1"
    return {
        "cases": cases,
        "units": [u["unit_id"] for u in units],
        "districts": [u["unit_id"] for u in units if u.get("kind") == "district"],
        "towns": [u["unit_id"] for u in units if u.get("kind") == "town"],
        "leaders": leaders,
        "meetings": meeting_ids,
        "numbers": sorted(numbers) or ["1"],
        "months": sorted({b["month"] for b in bulletins} | {last_month, today.strftime("%Y-%m")}),
        "quarters": sorted({p["quarter"] for p in pushes} | {quarter, next_quarter}),
    }


def visible_cases(base: str, token: str) -> list[dict]:
    status, rows = call(base, "GET", "/api/v1/checklist?per_page=200", token)
    return rows["rows"] if status == 200 else []


def day(offset: int) -> str:
    return (dt.date.today() + dt.timedelta(days=offset)).isoformat()


def examples_for(seeds: dict, own_rows: list[dict]) -> dict:
    """One well-formed request per write (and for the assessment's dates): the examples phase
    sends it and the coverage phase varies it field by field, so writes get past validation."""
    open_cases = [r["case_id"] for r in own_rows if r.get("status") != "crossed_off"] or seeds["cases"][:1]
    case = open_cases[0]
    siming = [r["case_id"] for r in own_rows if r.get("status") != "crossed_off" and (r.get("district") or {}).get("id") == "xm-siming"]
    body = {
        "POST /api/v1/cases": {
            "petitioners": [{"name": "张三", "id_number": id_number(42), "phone": "10012345678", "address": "思明区中华街道"}],
            "matter": "要求解决房屋征收补偿问题", "category": "征地拆迁",
            "district_id": "xm-siming", "town_id": "xm-siming-zhonghua",
            "channel": "visit", "first_filed_on": day(-180), "list_source": "screening",
        },
        "POST /api/v1/cases/{id}/leader": {"leader_id": "ldr-siming-1", "reason": "工作调整"},
        "POST /api/v1/cases/{id}/units": {"lead_unit_id": "xm-siming-zhonghua", "assisting_unit_ids": ["xm-dept-zjj"], "handler": "王五"},
        "POST /api/v1/cases/{id}/measures": {"description": "包案领导约访信访人，核实补偿标准", "due_on": day(30)},
        "POST /api/v1/cases/{id}/measures/{measure_id}/complete": {"result": "已约访，当事人接受调解方案"},
        "POST /api/v1/cases/{id}/notes": {"text": "已电话回访"},
        "POST /api/v1/cases/{id}/classification": {"class": "reasonable", "category": "征地拆迁", "reason": "补充材料后重新认定"},
        "POST /api/v1/cases/{id}/activities": {"kind": "home_visit", "held_on": day(-10), "participants": ["张三"], "summary": "下访当事人家中，听取诉求"},
        "POST /api/v1/cases/{id}/extension": {"days": 30, "reason": "需补充评估", "approved_by": "市信访局"},
        "POST /api/v1/cases/{id}/claims": {"ground": "settlement_agreement", "summary": "签订息诉罢访协议", "evidence": ["协议 思明-2026-017"]},
        "POST /api/v1/cases/{id}/claims/review": {"level": "district", "accept": True},
        "POST /api/v1/cases/{id}/petitions": {"received_on": day(-10), "channel": "visit", "summary": "再次来访反映补偿问题"},
        "POST /api/v1/cases/{id}/satisfaction": {"rating": "satisfied", "rated_on": day(-3), "rated_by": "电话回访"},
        "POST /api/v1/cases/{id}/procedure": {"step": "acceptance_notified", "on": day(-10), "summary": "书面告知受理"},
        "POST /api/v1/meetings": {"unit_id": "xm-siming"},
        "POST /api/v1/meetings/{id}/instructions": {"text": "本周内约访信访人，核实诉求", "feedback_due_on": day(14), "case_id": (siming or [case])[0]},
        "POST /api/v1/meetings/{id}/instructions/{number}/feedback": {"text": "已约访，报送化解方案", "on": day(-1)},
        "POST /api/v1/bulletins": {"month": seeds["months"][-2] if len(seeds["months"]) > 1 else seeds["months"][0]},
        "POST /api/v1/pushes": {"quarter": seeds["quarters"][-1], "case_ids": open_cases[:3], "targets": [{"unit_id": "xm-siming", "cases": 1}], "title": "攻坚"},
        "POST /api/v1/session": {"username": "chakan", "password": PASSWORD},
    }
    params = {
        "id": case, "measure_id": "m1", "number": seeds["numbers"][0], "month": seeds["months"][0],
        "quarter": seeds["quarters"][0], "from": f"{dt.date.today().year}-01-01", "to": f"{dt.date.today().year}-12-31",
    }
    meeting = seeds["meetings"][0] if seeds["meetings"] else "xm-siming-2026w49"
    return {"bodies": body, "parameters": params, "meeting_id": meeting}


# --- the Schemathesis configuration ----------------------------------------------------------


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(v)


def config_for(user: str, seeds: dict, own_rows: list[dict]) -> str:
    own_cases = [r["case_id"] for r in own_rows]
    # The user's own cases first (a sample, spread over the list), then a few they cannot see.
    step = max(1, len(own_cases) // 25)
    mine = own_cases[::step][:25]
    others = [c for c in seeds["cases"] if c not in set(own_cases)][:5]
    case_ids = mine + others or seeds["cases"][:25]
    dictionaries = {
        "case_ids": case_ids,
        "measure_ids": ["m1", "m2", "m3", "m4"],
        "meeting_ids": seeds["meetings"] or ["xm-siming-2026w49"],
        "instruction_numbers": seeds["numbers"],
        "months": seeds["months"],
        "quarters": seeds["quarters"],
        "units": seeds["units"],
        "districts": seeds["districts"],
        "towns": seeds["towns"],
        "leaders": seeds["leaders"] or ["ldr-siming-1"],
        "categories": ["征地拆迁", "劳动社保", "企业改制", "物业管理", "涉法涉诉"],
        "id_numbers": [id_number(i) for i in range(1, 9)],
        "usernames": list(USERS),
        "passwords": [PASSWORD],
        # Ordinary dates, and the edges: year 1, the day before Excel's calendar starts (XLSX
        # exports write dates as Excel serials), the last day Excel has, and a date in the future.
        "dates": [day(-300), day(-60), day(-10), day(-1), day(0), day(20), "0001-01-01", "1899-12-30", "9999-12-31"],
        # Any version (`*`) or a stale one (412); a generated If-Match is almost never a version
        # and would stop nearly every write at 400 before it reaches the command services.
        "if_match": ["*", "*", "*", '"1"'],
        "siming": ["xm-siming"],
        "siming_towns": [t for t in seeds["towns"] if t.startswith("xm-siming-")] or ["xm-siming-zhonghua"],
    }
    lines = [
        f"# Written by deploy/fuzz/run.py for the user {user}.",
        "[auth.openapi.cookie]",
        'api_key = "${ZHZJ_FUZZ_TOKEN}"',
        "",
    ]
    for name, values in dictionaries.items():
        lines += [f"[dictionaries.{name}]", f"values = {toml_value(values)}", ""]

    def op(path_regex: str, params: dict[str, tuple[str, float]]):
        lines.extend(
            [
                "[[operations]]",
                f"include-path-regex = {toml_value(path_regex)}",
                "parameters = "
                + toml_value({k: {"dictionary": d, "probability": p} for k, (d, p) in params.items()}),
                "",
            ]
        )

    body_ids = {
        "body.district_id": ("districts", 0.6),
        "body.town_id": ("towns", 0.6),
        "body.leader_id": ("leaders", 0.6),
        "body.unit_id": ("units", 0.6),
        "body.lead_unit_id": ("units", 0.6),
        "body.responsible_unit_id": ("units", 0.6),
        "body.assisting_unit_ids[*]": ("units", 0.6),
        "body.category": ("categories", 0.5),
        "body.case_id": ("case_ids", 0.6),
        "body.case_ids[*]": ("case_ids", 0.6),
        "body.month": ("months", 0.6),
        "body.quarter": ("quarters", 0.6),
        "body.targets[*].unit_id": ("units", 0.6),
        "body.petitioners[*].id_number": ("id_numbers", 0.6),
        "body.feedback_due_on": ("dates", 0.5),
        "body.held_on": ("dates", 0.5),
        "body.on": ("dates", 0.5),
        "body.rated_on": ("dates", 0.5),
        "body.received_on": ("dates", 0.5),
        "body.due_on": ("dates", 0.5),
        "body.first_filed_on": ("dates", 0.5),
        "header.If-Match": ("if_match", 0.85),
    }
    # Registration checks that the town lies in the district: keep both in 思明区 most of the time.
    # An existing case_id is a 409 the fuzzing phase need not find again and again.
    register = body_ids | {"body.town_id": ("siming_towns", 0.7), "body.case_id": ("case_ids", 0.1)}
    op(r"^/api/v1/cases/\{id\}/measures/\{measure_id\}", {"path.id": ("case_ids", 0.8), "path.measure_id": ("measure_ids", 0.8)} | body_ids)
    op(r"^/api/v1/cases/\{id\}(/(?!measures/\{)|$)", {"path.id": ("case_ids", 0.8)} | body_ids)
    op(r"^/api/v1/meetings/\{id\}/instructions/\{number\}", {"path.id": ("meeting_ids", 0.8), "path.number": ("instruction_numbers", 0.8)} | body_ids)
    op(r"^/api/v1/meetings/\{id\}(/(?!instructions/\{)|$)", {"path.id": ("meeting_ids", 0.8)} | body_ids)
    op(r"^/api/v1/bulletins/\{month\}", {"path.month": ("months", 0.8)})
    op(r"^/api/v1/pushes/\{quarter\}", {"path.quarter": ("quarters", 0.8)})
    op(r"^/api/v1/cases$", register | {"body.district_id": ("siming", 0.8)})
    op(r"^/api/v1/(meetings|bulletins|pushes|ledger/import\.(csv|xlsx))$", body_ids)
    op(
        r"^/api/v1/checklist",
        {
            "query.district": ("districts", 0.5),
            "query.town": ("towns", 0.5),
            "query.leader": ("leaders", 0.5),
            "query.unit": ("units", 0.5),
            "query.q": ("categories", 0.3),
        },
    )
    op(r"^/api/v1/cases/duplicates$", {"query.id_number": ("id_numbers", 0.5), "query.town": ("towns", 0.5), "query.category": ("categories", 0.5)})
    op(r"^/api/v1/session$", {"body.username": ("usernames", 0.5), "body.password": ("passwords", 0.5)})
    return "\n".join(lines)


# --- running Schemathesis and reading what it found ------------------------------------------


def run_user(args, user: str, token: str, seeds: dict, own_rows: list[dict]) -> tuple[int, Path, float]:
    out = Path(args.report_dir) / user
    out.mkdir(parents=True, exist_ok=True)
    cfg = out / "schemathesis.toml"
    cfg.write_text(config_for(user, seeds, own_rows), encoding="utf-8")
    examples = out / "examples.json"
    examples.write_text(json.dumps(examples_for(seeds, own_rows), ensure_ascii=False, indent=1), encoding="utf-8")
    cmd = [
        str(Path(sys.executable).parent / "st"),
        "--config-file", str(cfg),
        "--no-color",
        "run", f"{args.base_url}/api/v1/openapi.json",
        "--checks", os.environ.get("FUZZ_CHECKS", CHECKS),
        "--max-examples", os.environ.get("FUZZ_MAX_EXAMPLES", "20"),
        "--phases", os.environ.get("FUZZ_PHASES", "examples,coverage,fuzzing,stateful"),
        "--workers", os.environ.get("FUZZ_WORKERS", "2"),
        "--generation-with-security-parameters", "false",
        "--request-timeout", "60",
        "--continue-on-failure",
        # A dictionary value put into a negative case's only parameter makes it positive and
        # Hypothesis drops it; with single-parameter paths (/bulletins/{month}) that trips this check.
        "--suppress-health-check", "filter_too_much",
        "--report", "ndjson",
        "--report-ndjson-path", str(out / "events.ndjson"),
        "--output-truncate", "true",
    ]
    if os.environ.get("FUZZ_SEED"):
        cmd += ["--seed", os.environ["FUZZ_SEED"], "--generation-database", "none"]
    else:
        cmd += ["--generation-deterministic"]
    cmd += exclude_args()
    env = dict(os.environ, ZHZJ_FUZZ_TOKEN=token, ZHZJ_FUZZ_EXAMPLES=str(examples), SCHEMATHESIS_HOOKS=str(HERE / "hooks.py"))
    started = time.monotonic()
    with open(out / "st.log", "w", encoding="utf-8") as log:
        log.write("$ " + shlex.join(cmd) + "\n")
        log.flush()
        code = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=out)
    return code, out, time.monotonic() - started


def exclude_args() -> list[str]:
    # By the operation's name ("DELETE /api/v1/session"): `--exclude-method` and `--exclude-path`
    # together would also drop GET and POST /api/v1/session.
    names = "|".join(f"{m} {p}" for m, p in EXCLUDED)
    return ["--exclude-name-regex", f"^({names})$"] if EXCLUDED else []


# --- reading the NDJSON events ---------------------------------------------------------------


def curl_line(request: dict, user: str) -> str:
    parts = ["curl", "-i", "-X", request["method"]]
    for name, values in (request.get("headers") or {}).items():
        if name.lower() in ("cookie", "authorization", "user-agent", "accept-encoding", "accept", "connection",
                            "content-length", "x-schemathesis-testcaseid"):
            continue
        for v in values if isinstance(values, list) else [values]:
            parts += ["-H", f"{name}: {v}"]
    parts += ["-H", f"Cookie: zhzj_session=$TOKEN_{user.upper().replace('-', '_')}"]
    body = request.get("body")
    if body:
        raw = base64.b64decode(body["$base64"]) if isinstance(body, dict) and "$base64" in body else str(body).encode()
        try:
            text = raw.decode("utf-8")
            if len(text) > 600:
                text = text[:600] + "…(truncated)"
            parts += ["--data-raw", text]
        except UnicodeDecodeError:
            parts += ["--data-binary", f"<{len(raw)} bytes: {raw[:40]!r}…>"]
    parts.append(request["uri"])
    return shlex.join(parts)


def response_text(response: dict | None) -> str:
    if not response:
        return ""
    content = response.get("content")
    if isinstance(content, dict) and "$base64" in content:
        raw = base64.b64decode(content["$base64"])
    elif content is None:
        raw = b""
    else:
        raw = str(content).encode()
    text = raw.decode("utf-8", "replace")
    return text if len(text) <= 300 else text[:300] + "…"


def read_failures(user: str, events: Path, zhzj_log: Path | None) -> tuple[list[dict], list[str], dict]:
    failures: dict[tuple, dict] = {}
    errors: list[str] = []
    timing: dict[str, list[float]] = {}
    if not events.exists():
        return [], [f"{user}: Schemathesis wrote no events ({events})"], timing
    for line in events.open(encoding="utf-8"):
        event = json.loads(line)
        if "NonFatalError" in event:
            e = event["NonFatalError"]
            errors.append(f"{user}: {e.get('label', '?')}: {(e.get('value') or {}).get('message') or json.dumps(e)[:300]}")
            continue
        if "ScenarioFinished" not in event:
            continue
        rec = event["ScenarioFinished"].get("recorder") or {}
        interactions = rec.get("interactions") or {}
        for inter in interactions.values():
            r = inter.get("response") or {}
            if "elapsed" in r:
                timing.setdefault(rec.get("label", "?"), []).append(r["elapsed"])
        for case_id, checks in (rec.get("checks") or {}).items():
            for check in checks:
                if check.get("status") != "failure":
                    continue
                info = (check.get("failure_info") or {}).get("failure") or {}
                inter = interactions.get(case_id) or {}
                request = inter.get("request") or {}
                response = inter.get("response") or {}
                status = response.get("status_code")
                operation = info.get("operation") or rec.get("label", "?")
                key = (user, check["name"], operation, status, info.get("title"))
                curl = curl_line(request, user) if request else ""
                if key in failures:
                    failures[key]["count"] += 1
                    # Keep the shortest request of the kind: the closest to a minimal reproduction.
                    if not curl or len(curl) >= len(failures[key]["curl"]):
                        continue
                    count = failures[key]["count"]
                else:
                    count = 1
                item = {
                    "user": user,
                    "check": check["name"],
                    "code": info.get("code"),
                    "operation": operation,
                    "title": info.get("title"),
                    "message": (info.get("message") or "")[:500],
                    "status": status,
                    "response": response_text(response),
                    "curl": curl,
                    "count": count,
                }
                cid = (response.get("headers") or {}).get("x-correlation-id")
                if status and status >= 500 and cid and zhzj_log:
                    item["log"] = log_lines(zhzj_log, cid[0] if isinstance(cid, list) else cid)
                failures[key] = item
    return list(failures.values()), errors, timing


def log_lines(path: Path, correlation_id: str) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return [l.strip()[:600] for l in text.splitlines() if correlation_id in l and ("ERROR" in l or "WARN" in l)][:5]


def documented(spec: dict, operation: str) -> str:
    method, _, path = operation.partition(" ")
    op = (spec.get("paths", {}).get(path) or {}).get(method.lower()) or {}
    return ", ".join(sorted(op.get("responses", {})))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", required=True, help="http://127.0.0.1:PORT of the running zhzj")
    parser.add_argument("--report-dir", required=True)
    parser.add_argument("--zhzj-log", help="zhzj's log, searched for the errors behind a 5xx")
    args = parser.parse_args()
    users = [u for u in os.environ.get("FUZZ_USERS", ",".join(USERS)).split(",") if u]
    unknown = [u for u in users if u not in USERS and u not in OPTIONAL_USERS]
    if unknown:
        sys.exit(f"fuzz: unknown demo users {unknown}")
    wait_caught_up(args.base_url)
    tokens = {u: login(args.base_url, u) for u in sorted(set(users) | {"admin"})}
    seeds = seed_data(args.base_url, tokens)
    with urllib.request.urlopen(f"{args.base_url}/api/v1/openapi.json", timeout=60) as resp:
        spec = json.loads(resp.read())
    (Path(args.report_dir)).mkdir(parents=True, exist_ok=True)
    (Path(args.report_dir) / "openapi.json").write_text(json.dumps(spec, ensure_ascii=False, indent=1))

    all_failures: list[dict] = []
    all_errors: list[str] = []
    all_timing: dict[str, list[float]] = {}
    exit_codes = {}
    for user in users:
        own = visible_cases(args.base_url, tokens[user])
        code, out, took = run_user(args, user, tokens[user], seeds, own)
        failures, errors, timing = read_failures(user, out / "events.ndjson", Path(args.zhzj_log) if args.zhzj_log else None)
        exit_codes[user] = code
        for label, times in timing.items():
            all_timing.setdefault(label, []).extend(times)
        print(f"fuzz: {user:8} ({USERS.get(user) or OPTIONAL_USERS.get(user, '?')}): st exit {code}, {len(failures)} distinct failures, "
              f"{len(errors)} errors, {took:.0f} s — {out / 'st.log'}", flush=True)
        all_failures += failures
        all_errors += errors
        if code not in (0, 1):
            all_errors.append(f"{user}: st run exited {code}; see {out / 'st.log'}")

    slow = sorted(((max(t), sum(t), len(t), label) for label, t in all_timing.items()), reverse=True)[:5]
    print("\nfuzz: slowest operations (max s, total s, requests):")
    for worst, total, n, label in slow:
        print(f"  {worst:6.2f} {total:7.1f} {n:5d}  {label}")

    summary = {"failures": all_failures, "errors": all_errors, "exit_codes": exit_codes}
    (Path(args.report_dir) / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=1))
    print()
    if not all_failures and not all_errors:
        print("fuzz: no failures (checks: " + CHECKS + ")")
        return 0
    # One block per operation and status (a 500 fails two checks), with every user it happened to.
    grouped: dict[tuple, list[dict]] = {}
    for f in all_failures:
        grouped.setdefault((f["operation"], f["status"]), []).append(f)
    print(f"fuzz: {len(grouped)} distinct failures (operation and status):")
    for (operation, status), items in sorted(grouped.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        first = items[0]
        who = ", ".join(u for u in [*USERS, *OPTIONAL_USERS] if any(i["user"] == u for i in items))
        checks = ", ".join(sorted({f"{i['code']} {i['title']}" for i in items}))
        print(f"\n- {operation}: got {status}, documented {documented(spec, operation)} [{checks}]; users: {who}")
        messages = {i["message"] for i in items if i["message"] and not i["message"].startswith("Received:")}
        for m in sorted(messages)[:3]:
            print("    " + m.replace("\n", "\n    ")[:400])
        if first["response"]:
            print(f"    response: {first['response']}")
        for line in next((i["log"] for i in items if i.get("log")), []):
            print(f"    zhzj log: {line}")
        shortest = min(items, key=lambda i: len(i["curl"]) if i["curl"] else 1 << 30)
        print(f"    {shortest['curl']}")
        if status and status >= 500:
            print("    (if this request alone answers 200 on a fresh instance, data written earlier in the run"
                  " trips it: see the zhzj log and the users' events.ndjson)")
    for e in all_errors:
        print(f"\n- error: {e}")
    print(f"\nfuzz: reports under {args.report_dir} (per user: st.log, events.ndjson, schemathesis.toml; summary.json)")
    return 1


if __name__ == "__main__":
    sys.exit(main())
