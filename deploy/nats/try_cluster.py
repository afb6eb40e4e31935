#!/usr/bin/env python3
"""Helpers of try-cluster.sh (nats-py, nkeys): test credentials, the stream, what the roles may do.

  credentials DIR          writes DIR/<role>.nk (0600) and DIR/authorization.conf as
                           `zhzj nats-credentials --dir DIR` does (same roles, permissions and
                           layout as services/trust/src/nats_access.rs); for trying the configs
                           before that command exists
  setup   --servers ...    waits for JetStream, creates ZHZJ_EVENTS with the admin NKey (unless
                           `zhzj log init` did), then
                           checks that each role can do what it needs (the permissions are not
                           too tight): cases appends and answers a command, the gateway commands
                           and reads, the projector reads through a consumer
  connects --servers ...   exits 0 if the --nkey connects, 1 if it is refused
"""

import argparse
import asyncio
import json
import logging
import os
import ssl
import sys
import uuid

STREAM = "ZHZJ_EVENTS"
SUBJECTS = ["zhzj.ev.>", "zhzj.seal"]
ROLES = ["gateway", "cli", "cases", "campaign", "projector", "admin"]


def permissions(role):
    """What a role may do, as services/trust/src/nats_access.rs says; None: everything."""
    read = [
        "$JS.API.INFO",
        f"$JS.API.STREAM.INFO.{STREAM}",
        f"$JS.API.STREAM.MSG.GET.{STREAM}",
        f"$JS.API.DIRECT.GET.{STREAM}",
        f"$JS.API.DIRECT.GET.{STREAM}.>",
        f"$JS.API.CONSUMER.CREATE.{STREAM}",
        f"$JS.API.CONSUMER.CREATE.{STREAM}.>",
        f"$JS.API.CONSUMER.DELETE.{STREAM}.>",
        f"$JS.API.CONSUMER.INFO.{STREAM}.>",
        f"$JS.API.CONSUMER.MSG.NEXT.{STREAM}.>",
    ]
    inbox = f"_INBOX_zhzj_{role}.>"
    if role == "admin":
        return None
    if role in ("gateway", "cli"):
        return read + ["zhzj.cmd.>"], [inbox], False
    if role in ("cases", "campaign"):
        return read + ["zhzj.ev.>", "zhzj.seal"], [f"zhzj.cmd.{role}", "zhzj.cmd.seal", inbox], True
    if role == "projector":
        return read, [inbox], False
    raise ValueError(role)


def write_private(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)


def credentials(directory):
    import nkeys

    os.makedirs(directory, exist_ok=True)
    os.chmod(directory, 0o700)
    quoted = lambda subjects: ", ".join(f'"{s}"' for s in subjects)  # noqa: E731
    text = ("# zhzj's NATS users, one per role (written by zhzj; see README, \"Security\").\n"
            "authorization {\n  users = [\n")
    for role in ROLES:
        path = os.path.join(directory, f"{role}.nk")
        if os.path.exists(path):
            seed = open(path, "rb").read().strip()
        else:
            seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
            write_private(path, seed.decode() + "\n")
        public = nkeys.from_seed(bytearray(seed)).public_key.decode()
        text += f"    # {role}\n"
        p = permissions(role)
        if p is None:
            text += f'    {{ nkey: "{public}" }}\n'
            continue
        publish, subscribe, responses = p
        text += (f'    {{ nkey: "{public}", permissions: {{\n'
                 f"      publish: {{ allow: [{quoted(publish)}] }}\n"
                 f"      subscribe: {{ allow: [{quoted(subscribe)}] }}\n")
        if responses:
            text += "      allow_responses: true\n"
        text += "    } }\n"
    text += "  ]\n}\n"
    write_private(os.path.join(directory, "authorization.conf"), text)
    print(f"wrote {directory}/authorization.conf and {len(ROLES)} NKey seeds")


async def connect(args, role=None, nkey=None):
    import nats

    context = ssl.create_default_context(cafile=args.tls_ca)
    if args.tls_cert:
        context.load_cert_chain(args.tls_cert, args.tls_key)
    nkey = nkey or os.path.join(args.creds, f"{role}.nk")
    role = role or os.path.splitext(os.path.basename(nkey))[0]

    async def quiet(error):
        errors.append(f"{role}: {error}")

    return await nats.connect(
        servers=args.servers.split(","), tls=context, nkeys_seed=nkey,
        inbox_prefix=f"_INBOX_zhzj_{role}" if role != "admin" else "_INBOX",
        allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=3,
        error_cb=quiet, name=f"try-cluster-{role}")


errors = []


async def setup(args):
    import nats.js.errors
    from nats.js import api

    # The stream, as `zhzj log init --nats-nkey admin.nk` would create it.
    admin = await connect(args, "admin")
    js = admin.jetstream(timeout=5)
    config = api.StreamConfig(
        name=STREAM, subjects=SUBJECTS, storage=api.StorageType.FILE, num_replicas=3,
        deny_delete=True, deny_purge=True, duplicate_window=120.0)
    last = None
    for _ in range(120):
        try:
            try:
                info = await js.stream_info(STREAM)  # made by `zhzj log init`
                print(f"OK {STREAM} exists: subjects {info.config.subjects}")
            except nats.js.errors.NotFoundError:
                info = await js.add_stream(config)
            break
        except Exception as e:  # noqa: BLE001 - JetStream not ready yet (no meta leader)
            last = e
            await asyncio.sleep(0.5)
    else:
        raise SystemExit(f"FAILED: could not create {STREAM}: {last!r}")
    ok = info.config.deny_delete and info.config.deny_purge and info.config.num_replicas == 3
    print(f"{'OK' if ok else 'FAILED'} {STREAM} (admin): replicas {info.config.num_replicas}, "
          f"deny_delete {info.config.deny_delete}, deny_purge {info.config.deny_purge}, "
          f"cluster leader {info.cluster.leader if info.cluster else '?'}")
    await admin.close()
    if not ok:
        raise SystemExit(1)

    failures = 0

    def check(what, ok, detail=""):
        nonlocal failures
        failures += 0 if ok else 1
        print(f"{'OK' if ok else 'FAILED'} {what}{': ' + detail if detail else ''}", flush=True)

    case_id = str(uuid.uuid4())
    # cases appends a commit and answers commands (allow_responses).
    cases = await connect(args, "cases")
    cjs = cases.jetstream(timeout=5)
    ack = await cjs.publish(f"zhzj.ev.case.{case_id}",
                            json.dumps({"events": [{"type": "case_filed", "case_id": case_id}]}).encode(),
                            headers={"Nats-Msg-Id": str(uuid.uuid4())})
    check("cases appends a commit", ack.stream == STREAM, f"sequence {ack.seq}")
    ack = await cjs.publish("zhzj.seal", b'{"seal":"test"}')
    check("cases appends a seal", ack.stream == STREAM, f"sequence {ack.seq}")
    info = await cjs.stream_info(STREAM)
    check("cases reads the stream's state", info.state.messages >= 2, f"{info.state.messages} messages")

    async def answer(message):
        await message.respond(json.dumps({"error": {"code": "test", "message": "try-cluster"}}).encode())

    await cases.subscribe("zhzj.cmd.cases", queue="cases", cb=answer)
    await cases.flush()

    for role in ("gateway", "cli"):
        nc = await connect(args, role)
        try:
            reply = await nc.request("zhzj.cmd.cases", b"{}", timeout=3)
            check(f"{role} commands and gets the answer", b"try-cluster" in reply.data)
        except Exception as e:  # noqa: BLE001
            check(f"{role} commands and gets the answer", False, repr(e))
        njs = nc.jetstream(timeout=5)
        message = await njs.get_last_msg(STREAM, f"zhzj.ev.case.{case_id}")
        check(f"{role} loads an aggregate's last commit", message.seq >= 1, f"sequence {message.seq}")
        await nc.close()

    # The projector reads through an ephemeral pull consumer without acknowledgements.
    projector = await connect(args, "projector")
    pjs = projector.jetstream(timeout=5)
    consumer = await pjs.add_consumer(STREAM, api.ConsumerConfig(
        name=f"proj-{uuid.uuid4().hex[:8]}", filter_subject="zhzj.ev.>",
        deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=1,
        ack_policy=api.AckPolicy.NONE, inactive_threshold=30.0, mem_storage=True, num_replicas=1))
    sub = await pjs.pull_subscribe_bind(consumer.name, stream=STREAM)
    messages = await sub.fetch(10, timeout=3)
    check("projector reads through a pull consumer", len(messages) >= 1, f"{len(messages)} commits")
    info = await pjs.consumer_info(STREAM, consumer.name)
    check("projector reads its consumer's state", info.name == consumer.name)
    await pjs.delete_consumer(STREAM, consumer.name)
    check("projector deletes its consumer", True)
    await projector.close()
    await cases.close()

    for line in errors:
        check("no permission violation", False, line)
    if failures:
        raise SystemExit(1)


async def connects(args):
    try:
        nc = await connect(args, nkey=args.nkey)
    except Exception as e:  # noqa: BLE001
        print(f"refused: {type(e).__name__}: {e}")
        return 1
    await nc.close()
    print("connected")
    return 0


def main():
    # nats-py closing a TLS connection makes asyncio warn "returning true from eof_received()".
    logging.getLogger("asyncio").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("credentials")
    c.add_argument("dir")
    for name in ("setup", "connects"):
        s = sub.add_parser(name)
        s.add_argument("--servers", required=True)
        s.add_argument("--creds", help="the credentials directory")
        s.add_argument("--nkey", help="the NKey seed file (connects)")
        s.add_argument("--tls-ca", required=True)
        s.add_argument("--tls-cert")
        s.add_argument("--tls-key")
    args = parser.parse_args()
    if args.command == "credentials":
        credentials(args.dir)
    elif args.command == "setup":
        asyncio.run(setup(args))
    else:
        sys.exit(asyncio.run(connects(args)))


if __name__ == "__main__":
    main()
