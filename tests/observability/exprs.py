#!/usr/bin/env python3
"""Checks on JAiRouter's Prometheus rules and Grafana dashboards, for run.sh.

    exprs.py alerts-tested           every alert has a promtool unit test where it fires
    exprs.py dashboards-schema       the dashboards follow the conventions Grafana 10 imports
    exprs.py test-rules DIR          writes the rules into DIR with every `for` 30 times shorter
                                     (1m -> 2s), so that their order is kept
    exprs.py test-alertmanager URL OUT   the Alertmanager configuration with its webhooks
                                     sent to URL and short grouping timers, written to OUT
    exprs.py live PROMETHEUS_URL     every expression of the rules and dashboards returns
                                     data from a Prometheus that scraped a stack under traffic

Each check prints "ok ..." or "not ok ..." lines and exits 1 on any "not ok".
"""
import glob
import json
import os
import re
import sys
import urllib.parse
import urllib.request

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RULES = sorted(glob.glob(os.path.join(ROOT, "deploy/prometheus/rules/*.yml")))
TESTS = sorted(glob.glob(os.path.join(ROOT, "deploy/prometheus/tests/*.yml")))
DASHBOARDS = sorted(glob.glob(os.path.join(ROOT, "deploy/grafana/dashboards/*.json")))
AM_CONFIG = os.path.join(ROOT, "deploy/alertmanager/alertmanager.yml")

# A metric or recorded series with its optional matchers. `up` only with matchers.
SELECTOR = re.compile(r'(?<![\w:"])((?:jairouter|haproxy)[a-zA-Z0-9_:]*|up(?=\{))(\{[^}]*\})?')


def rules():
    out = []
    for path in RULES:
        for g in yaml.safe_load(open(path))["groups"]:
            out.extend(g["rules"])
    return out


def report(problems, what):
    for p in problems:
        print(f"not ok {p}")
    if not problems:
        print(f"ok {what}")
    return 1 if problems else 0


def alerts_tested():
    alerts = {r["alert"] for r in rules() if "alert" in r}
    fired = set()
    for path in TESTS:
        for t in yaml.safe_load(open(path))["tests"]:
            for a in t.get("alert_rule_test", []):
                if a.get("exp_alerts"):
                    fired.add(a["alertname"])
    return report([f"alert {a} has no unit test where it fires" for a in sorted(alerts - fired)],
                  f"{len(alerts)} alerts, each with a unit test where it fires")


def dashboards_schema():
    problems, uids = [], set()
    for path in DASHBOARDS:
        name = os.path.basename(path)
        d = json.load(open(path))
        for k in ("uid", "title", "schemaVersion", "panels", "templating", "time"):
            if k not in d:
                problems.append(f"{name}: no {k}")
        if d.get("uid") in uids:
            problems.append(f"{name}: uid {d.get('uid')} used twice")
        uids.add(d.get("uid"))
        if d.get("schemaVersion", 0) < 36:
            problems.append(f"{name}: schemaVersion below 36 (Grafana 9)")
        tv = {v["name"]: v for v in d.get("templating", {}).get("list", [])}
        ds = tv.get("datasource")
        if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
            problems.append(f"{name}: no Prometheus data source variable")
        ids = set()
        for p in d.get("panels", []):
            if p.get("id") in ids:
                problems.append(f"{name}: panel id {p.get('id')} twice")
            ids.add(p.get("id"))
            gp = p.get("gridPos", {})
            if gp.get("x", 0) + gp.get("w", 0) > 24 or not gp.get("h"):
                problems.append(f"{name}: panel {p.get('title')} outside the grid")
            if p.get("datasource", {}).get("uid") != "${datasource}":
                problems.append(f"{name}: panel {p.get('title')} does not use ${{datasource}}")
            if not p.get("targets"):
                problems.append(f"{name}: panel {p.get('title')} has no query")
            for t in p.get("targets", []):
                if not t.get("expr") or t.get("datasource", {}).get("uid") != "${datasource}":
                    problems.append(f"{name}: panel {p.get('title')}: a target without expr or data source")
    return report(problems, f"{len(DASHBOARDS)} dashboards follow the schema conventions")


def duration_s(text):
    """Seconds in a Prometheus duration such as 90s, 5m, 1h or 1h30m."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    parts = re.findall(r"(\d+)(ms|s|m|h|d|w|y)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return int(sum(int(n) * units[u] for n, u in parts))


def test_rules(outdir):
    os.makedirs(outdir, exist_ok=True)
    for path in RULES:
        doc = yaml.safe_load(open(path))
        for g in doc["groups"]:
            g["interval"] = "1s"
            for r in g["rules"]:
                if "for" in r:
                    # 30 times shorter, at least 2 s: a symptom that waits longer than
                    # its cause in production waits longer here too.
                    r["for"] = f"{max(2, duration_s(r['for']) // 30)}s"
        with open(os.path.join(outdir, os.path.basename(path)), "w") as f:
            yaml.safe_dump(doc, f, sort_keys=False)
    return 0


def test_alertmanager(url, out):
    doc = yaml.safe_load(open(AM_CONFIG))

    def shorten(route):
        for k, v in (("group_wait", "1s"), ("group_interval", "1s"), ("repeat_interval", "1h")):
            if k in route:
                route[k] = v
        for r in route.get("routes", []):
            shorten(r)

    shorten(doc["route"])
    for r in doc["receivers"]:
        for w in r.get("webhook_configs", []):
            w["url"] = url.rstrip("/") + "/" + r["name"]
    with open(out, "w") as f:
        yaml.safe_dump(doc, f, sort_keys=False)
    return 0


def query(base, expr):
    u = base.rstrip("/") + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(u, timeout=10) as r:
            body = json.load(r)
    except Exception as e:  # HTTP 400 on a bad expression
        return None, str(e)
    if body.get("status") != "success":
        return None, body.get("error", "query failed")
    return body["data"]["result"], None


def dashboard_exprs():
    for path in DASHBOARDS:
        for p in json.load(open(path))["panels"]:
            for t in p["targets"]:
                e = t["expr"].replace('"$tenant"', '".*"').replace("$__range", "5m")
                yield f"{os.path.basename(path)}: {p['title']}", e


def live(base):
    problems, n = [], 0
    checks = []
    for r in rules():
        if "record" in r:
            checks.append((f"record {r['record']}", r["expr"], True))
            checks.append((f"recorded {r['record']}", r["record"], True))
        else:
            # The alert's expression must be valid; each series it reads must have data.
            checks.append((f"alert {r['alert']} (valid)", r["expr"], False))
            for m in SELECTOR.finditer(r["expr"]):
                checks.append((f"alert {r['alert']} reads", m.group(0), True))
    checks.extend((what, e, True) for what, e in dashboard_exprs())
    seen = set()
    for what, e, need_data in checks:
        if (what, e) in seen:
            continue
        seen.add((what, e))
        n += 1
        res, err = query(base, e)
        flat = " ".join(e.split())
        if err:
            problems.append(f"{what}: {flat}: {err}")
        elif need_data and not res:
            problems.append(f"{what}: {flat}: no data")
        else:
            print(f"ok {what}: {flat}")
    return report(problems, f"{n} expressions of the rules and dashboards return data")


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "alerts-tested":
        return alerts_tested()
    if cmd == "dashboards-schema":
        return dashboards_schema()
    if cmd == "test-rules" and len(argv) == 3:
        return test_rules(argv[2])
    if cmd == "test-alertmanager" and len(argv) == 4:
        return test_alertmanager(argv[2], argv[3])
    if cmd == "live" and len(argv) == 3:
        return live(argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
