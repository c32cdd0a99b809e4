#!/usr/bin/env python3
"""newswatch against Hyperscan on the same rules and articles, per core.

Not part of CI. Needs PyPI `hyperscan` (0.9.1 wraps Hyperscan 5.4) and
`pyyaml`, a release build of newswatch, and a rule set with its articles
from `gen-rules` (the matcher bench's generator, held-out vocabulary):

    python3 -m venv .venv-hs && .venv-hs/bin/pip install hyperscan pyyaml
    cargo build --release -p newswatch -p newswatch-loadgen
    target/release/gen-rules --corpus DIR --rules 1000 --docs 5000 --out gen-1k
    taskset -c 0 .venv-hs/bin/python tools/hyperscan/compare.py \
        --dir gen-1k --newswatch target/release/newswatch

Translation (a Hyperscan user's straightforward one; it gives Hyperscan
the easier task where the two differ):

* a word `w` is `\\Ww\\W` (caseless; every text is scanned with a space
  before and after, since `\\b` and `$` are refused in logical
  combinations); a phrase is its words joined by `\\W+`; `pre*` is
  `\\Wpre`; `{Word}` is `\\WWord\\W` without CASELESS;
* every rule is one logical combination (HS_FLAG_COMBINATION) over its
  literals: AND is `&`, OR `|`, NOT `!`, lists and macros are expanded;
  NEAR/ONEAR are plain `&` (no distance), `title:` scopes and `filter`s are
  dropped (title and body are scanned as one text);
* no SPEC §5 normalization: no diacritics folding, no `U.S.` = `US`, no
  possessives.

Timed in CPU seconds (user + system; the machine may be shared, and
CPU time is what "per core" means): Hyperscan's scan of every article (title, newline, body) with the
database compiled beforehand and the JSON parsed beforehand (its time
excludes both, as in issue 12); newswatch's `replay -r DIR events.jsonl`
(JSON decoding, matching, alerts written to /dev/null) minus the same
command on no events (start-up and rule compilation). Best of `--repeat`.
The Python call per article is part of Hyperscan's time; the script also
reports it measured alone (scans of empty texts), and the ratio without it.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import hyperscan
import yaml

TOKEN = re.compile(
    r'"[^"]*"|\{[^}]*\}|\(|\)|ONEAR/\d+|NEAR/\d+|\bAND\b|\bOR\b|\bNOT\b'
    r'|[@$][\w-]+|\w+:(?=\S)|[^\s()"{}]+'
)


class Translator:
    """Queries to Hyperscan patterns (literals) and combinations."""

    def __init__(self, lists, macros):
        self.lists = lists
        self.macros = macros
        self.literals = {}  # (pattern bytes, caseless) -> id

    def literal(self, pattern, caseless=True):
        key = (pattern, caseless)
        if key not in self.literals:
            self.literals[key] = len(self.literals)
        return str(self.literals[key])

    def word(self, text, caseless=True):
        words = re.findall(r"\w+", text)
        if not words:
            return None
        prefix = text.endswith("*")
        body = rb"\W+".join(re.escape(w.encode()) for w in words)
        pat = rb"\W" + body + (b"" if prefix else rb"\W")
        return self.literal(pat, caseless)

    def parse(self, query):
        toks = TOKEN.findall(query)
        expr, rest = self.or_expr(toks)
        return expr

    def or_expr(self, toks):
        left, toks = self.and_expr(toks)
        parts = [left]
        while toks and toks[0] == "OR":
            right, toks = self.and_expr(toks[1:])
            parts.append(right)
        parts = [p for p in parts if p]
        return ("(" + " | ".join(parts) + ")" if len(parts) > 1 else (parts[0] if parts else None)), toks

    def and_expr(self, toks):
        left, toks = self.unary(toks)
        parts = [left]
        while toks and toks[0] not in ("OR", ")"):
            if toks[0] == "AND" or toks[0].startswith(("NEAR/", "ONEAR/")):
                toks = toks[1:]
            right, toks = self.unary(toks)
            parts.append(right)
        parts = [p for p in parts if p]
        return ("(" + " & ".join(parts) + ")" if len(parts) > 1 else (parts[0] if parts else None)), toks

    def unary(self, toks):
        if not toks:
            return None, toks
        t = toks[0]
        if t == "NOT":
            inner, rest = self.unary(toks[1:])
            return ("!" + inner if inner else None), rest
        if t.endswith(":") and len(t) > 1:  # field scope: dropped
            return self.unary(toks[1:])
        if t == "(":
            inner, rest = self.or_expr(toks[1:])
            if rest and rest[0] == ")":
                rest = rest[1:]
            return inner, rest
        rest = toks[1:]
        if t.startswith("@"):
            alts = [self.word(e) for e in self.lists.get(t[1:], [])]
            alts = [a for a in alts if a]
            return ("(" + " | ".join(alts) + ")" if alts else None), rest
        if t.startswith("$"):
            return self.parse(self.macros.get(t[1:], "")), rest
        if t.startswith("{"):
            return self.word(t[1:-1], caseless=False), rest
        if t.startswith('"'):
            return self.word(t[1:-1]), rest
        return self.word(t), rest


def load_rules(rules_dir):
    lists, macros, queries = {}, {}, []
    for name in sorted(os.listdir(rules_dir)):
        if not name.endswith((".yaml", ".yml")):
            continue
        with open(os.path.join(rules_dir, name), encoding="utf-8") as f:
            doc = yaml.safe_load(f) or {}
        for k, v in (doc.get("lists") or {}).items():
            lists[k] = [str(x) for x in v]
        for k, v in (doc.get("macros") or {}).items():
            macros[k] = str(v)
        for r in doc.get("rules") or []:
            queries.append(str(r["query"]))
    return lists, macros, queries


def build_db(lists, macros, queries):
    tr = Translator(lists, macros)
    combos = [tr.parse(q) for q in queries]
    exprs, ids, flags = [], [], []
    for (pat, caseless), i in tr.literals.items():
        exprs.append(pat)
        ids.append(int(i))
        flags.append(hyperscan.HS_FLAG_QUIET | (hyperscan.HS_FLAG_CASELESS if caseless else 0))
    base = len(tr.literals)
    n_rules = 0
    for j, c in enumerate(combos):
        if not c:
            continue
        if not any(op in c for op in "&|!"):
            c = f"{c} | {c}"  # a combination needs an operator
        exprs.append(c.encode())
        ids.append(base + j)
        flags.append(hyperscan.HS_FLAG_COMBINATION | hyperscan.HS_FLAG_SINGLEMATCH)
        n_rules += 1
    db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    t = time.perf_counter()
    db.compile(expressions=exprs, ids=ids, flags=flags)
    return db, n_rules, len(tr.literals), time.perf_counter() - t


def load_texts(events):
    texts = []
    with open(events, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            v = json.loads(line)
            t = (v.get("title") or "") + "\n" + (v.get("body") or "")
            texts.append(b" " + t.encode() + b" ")
    return texts


def time_hyperscan(db, texts, repeat):
    hits = [0]

    def on_match(i, frm, to, fl, ctx):
        hits[0] += 1

    best = float("inf")
    for _ in range(repeat):
        hits[0] = 0
        t = time.process_time()
        for x in texts:
            db.scan(x, match_event_handler=on_match)
        best = min(best, time.process_time() - t)
    # The Python call alone: the same number of scans of empty texts.
    empty = [b""] * len(texts)
    call = float("inf")
    for _ in range(repeat):
        t = time.process_time()
        for x in empty:
            db.scan(x, match_event_handler=on_match)
        call = min(call, time.process_time() - t)
    return best, call, hits[0]


def time_replay(binary, rules_dir, events, repeat):
    def run(path):
        best = float("inf")
        for _ in range(repeat):
            p = subprocess.Popen(
                [binary, "replay", "-r", rules_dir, path],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            _, status, ru = os.wait4(p.pid, 0)
            if os.waitstatus_to_exitcode(status) != 0:
                raise SystemExit(f"{binary} replay failed")
            best = min(best, ru.ru_utime + ru.ru_stime)
        return best

    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        empty = f.name
    try:
        start = run(empty)
        total = run(events)
    finally:
        os.unlink(empty)
    out = subprocess.run(
        [binary, "replay", "-r", rules_dir, events],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        check=True,
    ).stdout
    return max(total - start, 1e-9), start, out.count(b"\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", required=True, help="gen-rules output (rules/, events.jsonl)")
    ap.add_argument("--newswatch", required=True, action="append",
                    help="newswatch binary (release); repeat to compare builds")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    rules_dir = os.path.join(a.dir, "rules")
    events = os.path.join(a.dir, "events.jsonl")
    lists, macros, queries = load_rules(rules_dir)
    db, n_rules, n_lit, compile_s = build_db(lists, macros, queries)
    texts = load_texts(events)
    mb = sum(len(x) for x in texts) / 1e6
    hs, call, hs_hits = time_hyperscan(db, texts, a.repeat)
    cpus = sorted(os.sched_getaffinity(0))
    print(f"rules: {len(queries)} ({n_rules} translated, {n_lit} literals), "
          f"articles: {len(texts)}, text: {mb:.2f} MB, CPUs allowed: {cpus}")
    print(f"hyperscan {hyperscan.__version__}: compile {compile_s:.2f} s, "
          f"scan {hs:.3f} s ({len(texts) / hs:,.0f} docs/s, {mb / hs:.1f} MB/s), "
          f"of which Python calls {call:.3f} s; rule matches {hs_hits}")
    for binary in a.newswatch:
        nw, start, nw_alerts = time_replay(binary, rules_dir, events, a.repeat)
        print(f"newswatch {binary}: replay {nw:.3f} s after {start:.2f} s start-up "
              f"({len(texts) / nw:,.0f} docs/s, {mb / nw:.1f} MB/s); alerts {nw_alerts}")
        print(f"  ratio newswatch/hyperscan: {hs / nw:.2f}x "
              f"(without Python calls: {max(hs - call, 1e-9) / nw:.2f}x)")
        json.dump(
            {"binary": binary, "rules": len(queries), "docs": len(texts), "mb": mb,
             "hs_s": hs, "hs_call_s": call, "nw_s": nw, "ratio": hs / nw,
             "ratio_no_calls": max(hs - call, 1e-9) / nw},
            sys.stderr,
        )
        sys.stderr.write("\n")


if __name__ == "__main__":
    main()
