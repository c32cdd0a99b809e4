#!/usr/bin/env python3
"""`newswatch replay` speed of two builds, side by side in one run.

Not part of CI. For each input file, both binaries replay it in turn,
`--repeat` times (interleaved, so that a busy machine slows both alike),
pinned to `--cpus` with taskset; each time has the same command on an
empty file (start-up and rule compilation) subtracted; the best of the
repeats counts (`--cpu-time`: CPU seconds instead of wall-clock
seconds, steadier when other work shares the CPUs). The alerts both write must be byte-identical (checked).

    cargo build --release && cp target/release/newswatch nw-after
    python3 tools/replay_speed.py --before nw-before --after nw-after \
        --cpus 0 -c config/newswatch.toml DIR/reuters21578-en.jsonl DIR/wikinews-ja.jsonl
    python3 tools/replay_speed.py --before nw-before --after nw-after \
        --cpus 0,1 -r gen-10k/rules gen-10k/events.jsonl

Prints per file: MB/s and docs/s of each build and the ratio after/before.
"""

import argparse
import hashlib
import os
import subprocess
import tempfile
import time


def run(binary, args, path, cpus):
    """(seconds, sha256 of stdout, lines): CPU seconds (user + system) of
    the replay with `--cpu-time`, else wall-clock seconds."""
    cmd = ["taskset", "-c", cpus, binary, "replay", *args, path]
    with tempfile.TemporaryFile() as out:
        t = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode != 0:
            raise SystemExit(f"{cmd} failed: {p.returncode}")
        out.seek(0)
        data = out.read()
    cpu = ru.ru_utime + ru.ru_stime
    return (cpu if CPU_TIME else wall), hashlib.sha256(data).hexdigest(), data.count(b"\n")


CPU_TIME = False


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--before", required=True)
    ap.add_argument("--after", required=True)
    ap.add_argument("--cpus", default="0", help="taskset CPU list (default 0)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--cpu-time", action="store_true",
                    help="time by CPU seconds (user + system), not wall clock: "
                         "steadier on a machine other work keeps busy")
    ap.add_argument("-c", "--config")
    ap.add_argument("-r", "--rules", action="append", default=[])
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()
    global CPU_TIME
    CPU_TIME = a.cpu_time
    args = (["-c", a.config] if a.config else []) + [x for r in a.rules for x in ("-r", r)]
    builds = {"before": a.before, "after": a.after}
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        empty = f.name
    try:
        start = {k: min(run(b, args, empty, a.cpus)[0] for _ in range(a.repeat))
                 for k, b in builds.items()}
        print(f"CPUs {a.cpus}; {'CPU' if CPU_TIME else 'wall-clock'} time; start-up (subtracted): "
              + ", ".join(f"{k} {v:.3f} s" for k, v in start.items()))
        print("| file | MB | docs | alerts | before MB/s | after MB/s | before docs/s "
              "| after docs/s | after/before |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for path in a.files:
            mb = os.path.getsize(path) / 1e6
            with open(path, "rb") as f:
                docs = sum(1 for line in f if line.strip())
            best = {k: float("inf") for k in builds}
            digests = {}
            alerts = 0
            for _ in range(a.repeat):
                for k, b in builds.items():
                    t, digest, alerts = run(b, args, path, a.cpus)
                    best[k] = min(best[k], max(t - start[k], 1e-9))
                    digests[k] = digest
            same = "" if digests["before"] == digests["after"] else " OUTPUT DIFFERS"
            bf, af = best["before"], best["after"]
            print(f"| {os.path.basename(path)} | {mb:.2f} | {docs} | {alerts} | {mb / bf:.1f} "
                  f"| {mb / af:.1f} | {docs / bf:,.0f} | {docs / af:,.0f} | {bf / af:.2f}x{same} |")
    finally:
        os.unlink(empty)


if __name__ == "__main__":
    main()
