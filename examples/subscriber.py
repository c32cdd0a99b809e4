#!/usr/bin/env python3
"""A newswatch subscriber: follow alert topics, drop duplicates, handle each
alert and digest once.

    pip install confluent-kafka
    python3 examples/subscriber.py --brokers 127.0.0.1:9092 --topic news.alerts

newswatch delivers at least once: after a crash or a rebalance a record may
arrive again, always with the same alert_id (digest_id for a digest), so a
subscriber drops what it has already handled by that id. This one keeps the
last 100,000 ids in memory; a service that must never handle twice across its
own restarts keeps them in its database instead.

Offsets are stored only after a record is handled and committed in the
background (and on exit), so a crash of this program re-reads, and its id
set drops, what was already handled: at-least-once end to end.

docs/subscriber-guide.md explains the payloads (schemas/*.json), the headers,
and routing. CI runs this file against a Tansu broker (tests/it/subscriber.rs).
"""

import argparse
import json
import signal
import sys
import time
from collections import OrderedDict

from confluent_kafka import Consumer, KafkaError


class Seen:
    """The ids handled lately, at most `cap` of them (oldest forgotten first)."""

    def __init__(self, cap=100_000):
        self.cap = cap
        self.ids = OrderedDict()

    def first(self, key):
        if key in self.ids:
            return False
        self.ids[key] = None
        if len(self.ids) > self.cap:
            self.ids.popitem(last=False)
        return True


def handle(payload, headers):
    """Do something with one alert or digest; here: print one line.

    Route by the headers without parsing the payload (newswatch-rule,
    newswatch-severity on alerts), or by the payload's rule labels.
    """
    if payload["schema"] == "newswatch.alert.v1":
        ev, rule = payload["event"], payload["rule"]
        extra = ""
        if payload["mode"] == "spike":
            extra = f" [spike: {payload['count']} vs {payload['baseline']:.1f} per window]"
        print(
            f"alert {payload['alert_id']} {headers.get('newswatch-severity')} "
            f"{rule['id']} desk={rule['labels'].get('desk', '-')} "
            f"{ev['title']!r} {ev['source']} {ev['url']}{extra}",
            flush=True,
        )
    else:  # newswatch.digest.v1
        period = payload["period"]
        print(
            f"digest {payload['digest_id']} {payload['rule']['id']} "
            f"{period['start']}..{period['end']}: {payload['count']} alerts, "
            f"{len(payload['items'])} listed",
            flush=True,
        )
        for item in payload["items"]:
            print(f"  - {item['event']['title']!r} {item['event']['url']}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--brokers", default="127.0.0.1:9092")
    ap.add_argument("--topic", action="append", help="repeatable (default news.alerts)")
    ap.add_argument("--group", default="desk-asia", help="this subscriber's consumer group")
    ap.add_argument("--from-beginning", action="store_true",
                    help="a new group starts at the oldest record (else at the next one)")
    ap.add_argument("--max", type=int, default=0, help="exit after N payloads handled (0: never)")
    ap.add_argument("--idle-exit", type=float, default=0,
                    help="exit 1 after this many seconds without a new payload (0: never)")
    args = ap.parse_args()

    consumer = Consumer({
        "bootstrap.servers": args.brokers,
        "group.id": args.group,
        "auto.offset.reset": "earliest" if args.from_beginning else "latest",
        # Store an offset only once its record is handled; commit stored
        # offsets in the background and on close().
        "enable.auto.offset.store": False,
        "enable.auto.commit": True,
    })
    consumer.subscribe(args.topic or ["news.alerts"])

    stop = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.append(True))

    seen, handled, last = Seen(), 0, time.monotonic()
    code = 0
    try:
        while not stop:
            msg = consumer.poll(0.5)
            if msg is None:
                if args.idle_exit and time.monotonic() - last > args.idle_exit:
                    print(f"no new payload for {args.idle_exit}s", file=sys.stderr)
                    code = 1
                    break
                continue
            if msg.error():
                # Broker outages are retried by the client; log and go on.
                if msg.error().code() != KafkaError._PARTITION_EOF:
                    print(f"kafka: {msg.error()}", file=sys.stderr)
                continue
            try:
                payload = json.loads(msg.value())
                schema = payload.get("schema")
                key = {"newswatch.alert.v1": "alert_id",
                       "newswatch.digest.v1": "digest_id"}[schema]
                record_id = payload[key]
            except (ValueError, KeyError, TypeError, AttributeError):
                print(f"skipped a record that is no newswatch payload at "
                      f"{msg.topic()}/{msg.partition()}@{msg.offset()}", file=sys.stderr)
                consumer.store_offsets(msg)
                continue
            headers = {k: (v or b"").decode() for k, v in (msg.headers() or [])}
            if seen.first((schema, record_id)):
                handle(payload, headers)
                handled += 1
                last = time.monotonic()
            consumer.store_offsets(msg)
            if args.max and handled >= args.max:
                break
    finally:
        consumer.close()  # commits the stored offsets, leaves the group
    return code


if __name__ == "__main__":
    sys.exit(main())
