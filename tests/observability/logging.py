#!/usr/bin/env python3
"""Checks deploy/logging/vector.toml, the access log shipping recipe: it parses as TOML,
its file source reads /var/log/jairouter/access.log (the path docs/observability.md
names), every component's inputs name a defined source or transform, the remap parses
the line as JSON, and a sample access line (tests/unit/test_accesslog.c's fields) has
the `ts` format the remap's timestamp parse expects. Prints "ok NAME" / "not ok NAME"."""
import json
import re
import sys
import tomllib

PATH = "/var/log/jairouter/access.log"
SAMPLE = ('{"ts":"2026-12-07T16:00:00Z","request_id":"5f0c","tenant":"acme","status":200,'
          '"prompt_tokens":12,"completion_tokens":30,"cost":0.00125}')


def main(path):
    failed = 0

    def check(name, cond):
        nonlocal failed
        print(("ok " if cond else "not ok ") + name)
        failed += 0 if cond else 1

    with open(path, "rb") as f:
        cfg = tomllib.load(f)
    sources = cfg.get("sources", {})
    transforms = cfg.get("transforms", {})
    sinks = cfg.get("sinks", {})
    check("vector_has_source_transform_sink", bool(sources and transforms and sinks))
    src = sources.get("jairouter_access", {})
    check("vector_source_reads_access_log", src.get("type") == "file" and PATH in src.get("include", []))
    names = set(sources) | set(transforms)
    inputs_ok = all(set(c.get("inputs", [])) <= names and c.get("inputs")
                    for c in list(transforms.values()) + list(sinks.values()))
    check("vector_inputs_defined", inputs_ok)
    remap = transforms.get("jairouter_access_json", {})
    check("vector_remap_parses_json", remap.get("type") == "remap"
          and "parse_json!(string!(.message))" in remap.get("source", ""))
    line = json.loads(SAMPLE)
    check("vector_timestamp_format_matches", re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", line["ts"]) is not None
          and '%Y-%m-%dT%H:%M:%SZ' in remap.get("source", ""))
    return failed


if __name__ == "__main__":
    sys.exit(1 if main(sys.argv[1] if len(sys.argv) > 1 else "deploy/logging/vector.toml") else 0)
