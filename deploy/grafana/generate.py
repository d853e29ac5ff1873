#!/usr/bin/env python3
"""Writes JAiRouter's Grafana dashboards (deploy/grafana/dashboards/*.json).

The dashboards are generated so that every panel follows the same conventions: the
Prometheus data source is the variable ${datasource}, tenant-level dashboards have a
$tenant variable (multi-value, "All" = .*), units are set, ids and grid positions are
consistent. Edit this file, then run it; tests/observability/run.sh fails when the JSON in
the repository differs from what this script writes.

    deploy/grafana/generate.py            write the dashboards
    deploy/grafana/generate.py --check    exit 1 when a dashboard is out of date
"""
import json
import os
import sys

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dashboards")
DS = {"type": "prometheus", "uid": "${datasource}"}
T = 'tenant=~"$tenant"'


def panel(title, exprs, unit="short", kind="timeseries", desc="", w=12, h=8):
    """exprs: [(expr, legend)]."""
    targets = [{"refId": chr(ord("A") + i), "datasource": DS, "expr": e, "legendFormat": l,
                "range": kind != "table", "instant": kind == "table"}
               for i, (e, l) in enumerate(exprs)]
    p = {"type": kind, "title": title, "description": desc, "datasource": DS, "targets": targets,
         "fieldConfig": {"defaults": {"unit": unit}, "overrides": []}, "_w": w, "_h": h}
    if kind == "timeseries":
        p["options"] = {"legend": {"displayMode": "table", "placement": "bottom", "calcs": ["lastNotNull", "max"]},
                        "tooltip": {"mode": "multi", "sort": "desc"}}
    elif kind == "stat":
        p["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                        "colorMode": "value", "graphMode": "area", "textMode": "auto"}
    elif kind == "table":
        p["options"] = {"showHeader": True}
        for t in targets:
            t["format"] = "table"
    return p


def dashboard(uid, title, desc, panels, tenant_var=False):
    templ = [{"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
              "current": {}, "hide": 0, "refresh": 1, "regex": "", "options": []}]
    if tenant_var:
        q = "label_values(jairouter_tenant_requests_total, tenant)"
        templ.append({"name": "tenant", "label": "Tenant", "type": "query", "datasource": DS,
                      "query": {"query": q, "refId": "tenant"}, "definition": q, "includeAll": True,
                      "multi": True, "allValue": ".*", "refresh": 2, "sort": 1, "hide": 0,
                      "current": {"selected": True, "text": ["All"], "value": ["$__all"]}, "options": []})
    x = y = rowh = 0
    for i, p in enumerate(panels, 1):
        w, h = p.pop("_w"), p.pop("_h")
        if x + w > 24:
            x, y = 0, y + rowh
            rowh = 0
        p["id"] = i
        p["gridPos"] = {"h": h, "w": w, "x": x, "y": y}
        x += w
        rowh = max(rowh, h)
    return {"uid": uid, "title": title, "description": desc, "tags": ["jairouter"], "timezone": "utc",
            "editable": True, "graphTooltip": 1, "schemaVersion": 38, "version": 1, "refresh": "30s",
            "time": {"from": "now-6h", "to": "now"}, "timepicker": {}, "fiscalYearStartMonth": 0,
            "liveNow": False, "weekStart": "", "links": [],
            "annotations": {"list": [{"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                                      "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
                                      "name": "Annotations & Alerts", "type": "dashboard"}]},
            "templating": {"list": templ}, "panels": panels}


def fleet():
    return dashboard("jairouter-fleet", "JAiRouter / Fleet overview",
                     "Is the gateway healthy, how much traffic, how many errors.", [
        panel("Agents up", [('sum(up{job="jairouter-agent"})', "agents")], kind="stat", w=6, h=4),
        panel("Agents usable by HAProxy", [('sum(haproxy_backend_active_servers{proxy="spoa-agents"})', "agents")],
              kind="stat", w=6, h=4),
        panel("Agents ready", [("sum(jairouter_ready)", "ready")], kind="stat", w=6, h=4),
        panel("Gateway 5xx ratio", [('sum(rate(haproxy_frontend_http_responses_total{proxy="fe_jairouter",code="5xx"}[5m])) '
                                     '/ sum(rate(haproxy_frontend_http_responses_total{proxy="fe_jairouter"}[5m]))', "5xx")],
              unit="percentunit", kind="stat", w=6, h=4),
        panel("Gateway's own 5xx (failing closed)", [("max(jairouter:gateway_own_5xx_ratio:rate5m)", "own 5xx")],
              unit="percentunit", desc="Answers the gateway gave itself: agent unavailable, not ready, no route.",
              w=24, h=4),
        panel("Requests by status class", [("sum by (code) (jairouter:tenant_requests:rate5m)", "{{code}}")], unit="reqps"),
        panel("Refusals by reason", [("sum by (reason) (jairouter:tenant_denied:rate5m)", "{{reason}}")], unit="reqps"),
        panel("Tokens per second", [("sum(jairouter:tenant_tokens:rate5m)", "tokens")]),
        panel("Cost per hour", [("sum(jairouter:tenant_cost:rate1h) * 3600", "cost")], unit="currencyUSD",
              desc="In the catalogue's currency (the unit shown is only a display choice)."),
        panel("Time to first byte", [
            ("histogram_quantile(0.5, sum by (le) (rate(jairouter_tenant_time_to_first_byte_seconds_bucket[5m])))", "p50"),
            ("histogram_quantile(0.95, sum by (le) (rate(jairouter_tenant_time_to_first_byte_seconds_bucket[5m])))", "p95")],
              unit="s"),
        panel("Latency objective: requests outside 5 s to first byte", [
            ("jairouter:latency_slo_bad_ratio:rate5m", "5m"), ("jairouter:latency_slo_bad_ratio:rate1h", "1h")],
              unit="percentunit"),
    ])


def tenants():
    return dashboard("jairouter-tenants", "JAiRouter / Tenant usage and cost",
                     "Which tenant spends what on which model.", [
        panel("Requests by tenant", [(f"sum by (tenant) (jairouter:tenant_requests:rate5m{{{T}}})", "{{tenant}}")],
              unit="reqps"),
        panel("Cost per hour by tenant and model",
              [(f"sum by (tenant, model) (jairouter:tenant_cost:rate1h{{{T}}}) * 3600", "{{tenant}} {{model}}")],
              unit="currencyUSD", desc="In the catalogue's currency."),
        panel("Cost in the selected range", [(f"sum by (tenant, model) (increase(jairouter_tenant_cost_total{{{T}}}[$__range]))", "")],
              kind="table", unit="currencyUSD"),
        panel("Tokens in the selected range", [
            (f"sum by (tenant, model) (increase(jairouter_tenant_prompt_tokens_total{{{T}}}[$__range]))", "prompt"),
            (f"sum by (tenant, model) (increase(jairouter_tenant_completion_tokens_total{{{T}}}[$__range]))", "completion")],
              kind="table"),
        panel("Prompt and completion tokens per second", [
            (f"sum by (tenant) (rate(jairouter_tenant_prompt_tokens_total{{{T}}}[5m]))", "{{tenant}} prompt"),
            (f"sum by (tenant) (rate(jairouter_tenant_completion_tokens_total{{{T}}}[5m]))", "{{tenant}} completion")]),
        panel("Month to date: cost and budget", [
            (f'sum by (tenant) (jairouter_tenant_period_cost{{period="month",{T}}})', "{{tenant}} spent"),
            (f'max by (tenant) (jairouter_tenant_limit{{dimension="budget",period="month",{T}}})', "{{tenant}} budget")],
              unit="currencyUSD"),
        panel("Streamed and estimated requests", [
            (f"sum by (tenant) (rate(jairouter_tenant_streamed_requests_total{{{T}}}[5m]))", "{{tenant}} streamed"),
            (f"sum by (tenant) (rate(jairouter_tenant_estimated_usage_total{{{T}}}[5m]))", "{{tenant}} estimated")],
              unit="reqps"),
        panel("Cost per hour by tenant label team", [
            ("sum by (label_team) (jairouter:tenant_cost:rate1h * on (tenant) group_left (label_team) "
             "max by (tenant, label_team) (jairouter_tenant_info)) * 3600", "{{label_team}}")],
              unit="currencyUSD", desc="Tenant labels (tenants.labels) joined through jairouter_tenant_info."),
        panel("Tenant labels", [(f"max by (tenant, label_team, label_plan) (jairouter_tenant_info{{{T}}})", "")],
              kind="table", w=24),
    ], tenant_var=True)


def models():
    return dashboard("jairouter-models", "JAiRouter / Models and backends",
                     "Latency, errors and breakers per model and upstream.", [
        panel("Time to first byte p95 by model", [
            ("histogram_quantile(0.95, sum by (model, le) (rate(jairouter_tenant_time_to_first_byte_seconds_bucket[5m])))",
             "{{model}}")], unit="s"),
        panel("Request duration p95 by model", [
            ("histogram_quantile(0.95, sum by (model, le) (rate(jairouter_tenant_request_duration_seconds_bucket[5m])))",
             "{{model}}")], unit="s"),
        panel("Requests by model and status class", [("sum by (model, code) (jairouter:tenant_requests:rate5m)",
                                                      "{{model}} {{code}}")], unit="reqps"),
        panel("Upstream 5xx ratio by backend", [("jairouter:backend_error_ratio:rate5m", "{{backend}}")],
              unit="percentunit"),
        panel("Breaker state (0 closed, 1 open, 2 half-open)", [("max by (backend, server) (jairouter_lb_breaker_state)",
                                                                "{{backend}}/{{server}}")]),
        panel("Router choices by server", [("sum by (backend, server) (rate(jairouter_lb_server_selections_total[5m]))",
                                           "{{backend}}/{{server}}")], unit="reqps"),
        panel("Router latency EWMA by server", [
            ("max by (backend, server, kind) (jairouter_lb_server_latency_ewma_seconds)", "{{backend}}/{{server}} {{kind}}")],
              unit="s", desc="The agent's moving averages (ttfb: peak EWMA of time to first byte), from the end-of-request reports."),
        panel("Server response time (HAProxy, last 1024 requests)", [
            ('max by (proxy, server) (haproxy_server_response_time_average_seconds{proxy!~"spoa-agents"})',
             "{{proxy}}/{{server}}")], unit="s"),
        panel("Fallbacks", [("sum by (model) (rate(jairouter_tenant_fallbacks_total[5m]))", "{{model}} served by a fallback"),
                            ("sum by (reason) (rate(jairouter_lb_fallbacks_total[5m]))", "router: {{reason}}")],
              unit="reqps"),
        panel("Adapter upstream errors by provider", [
            ("sum by (provider) (rate(jairouter_adapter_upstream_errors_total[5m]))", "{{provider}}")], unit="reqps"),
        panel("Usable servers", [("sum by (backend) (jairouter_lb_server_usable)", "{{backend}}")]),
    ])


def limits():
    return dashboard("jairouter-limits", "JAiRouter / Limits and quotas",
                     "Who is being throttled and why; budgets and quotas used.", [
        panel("Limit refusals by tenant, scope and dimension",
              [(f"sum by (tenant, scope, dimension) (jairouter:tenant_limit_refusals:rate5m{{{T}}})",
                "{{tenant}} {{scope}} {{dimension}}")], unit="reqps"),
        panel("Refusals by tenant and reason", [(f"sum by (tenant, reason) (jairouter:tenant_denied:rate5m{{{T}}})",
                                                 "{{tenant}} {{reason}}")], unit="reqps"),
        panel("Budget used in the period", [
            (f"sum by (tenant, period) (jairouter_tenant_period_cost{{{T}}}) / on (tenant, period) "
             'max by (tenant, period) (jairouter_tenant_limit{dimension="budget"})', "{{tenant}} per {{period}}")],
              unit="percentunit"),
        panel("Token quota used in the period", [
            (f"sum by (tenant, period) (jairouter_tenant_period_tokens{{{T}}}) / on (tenant, period) "
             'max by (tenant, period) (jairouter_tenant_limit{dimension="quota"})', "{{tenant}} per {{period}}")],
              unit="percentunit"),
        panel("Limit decisions by where they were taken", [("sum by (where) (rate(jairouter_limit_decisions_total[5m]))",
                                                           "{{where}}")], unit="reqps"),
        panel("Redis unusable (local fallback)", [("max(jairouter_limit_fleet_fallback)", "fallback")], kind="stat",
              w=6, h=8),
        panel("Reservations in flight", [("sum(jairouter_limit_reservations)", "reservations")], kind="stat", w=6, h=8),
    ], tenant_var=True)


def agent():
    return dashboard("jairouter-agent", "JAiRouter / Agent",
                     "The policy agent itself: decisions, dependencies, queues, drops.", [
        panel("Decisions by outcome", [("sum by (outcome) (rate(jairouter_decisions_total[5m]))", "{{outcome}}")],
              unit="reqps"),
        panel("Decision time", [
            ("histogram_quantile(0.5, sum by (le) (rate(jairouter_decision_duration_seconds_bucket[5m])))", "p50"),
            ("jairouter:decision_duration_seconds:p99_5m", "p99")], unit="s"),
        panel("PostgreSQL up", [("min(jairouter_database_up)", "up")], kind="stat", w=6, h=4),
        panel("Ready", [("min(jairouter_ready)", "ready")], kind="stat", w=6, h=4),
        panel("SPOP connections", [("sum(jairouter_spop_connections)", "connections")], kind="stat", w=6, h=4),
        panel("Redis unusable", [("max(jairouter_limit_fleet_fallback)", "fallback")], kind="stat", w=6, h=4),
        panel("Queues", [("sum(jairouter_usage_rows_pending)", "usage rows pending"),
                         ("sum(jairouter_audit_queued)", "audit events queued"),
                         ("sum(jairouter_limit_reservations)", "reservations")]),
        panel("Dropped in the last hour", [("sum(increase(jairouter_usage_rows_dropped_total[1h]))", "usage rows"),
                                           ("sum(increase(jairouter_audit_dropped_total[1h]))", "audit events"),
                                           ("sum(increase(jairouter_report_dropped_total[1h]))", "report lines")]),
        panel("SPOE errors", [("sum(rate(jairouter_spop_protocol_errors_total[5m]))", "agent: protocol errors"),
                              ('sum(rate(haproxy_backend_connection_errors_total{proxy="spoa-agents"}[5m]))',
                               "HAProxy: connection errors")], unit="ops"),
        panel("End-of-request reports", [("sum(rate(jairouter_report_lines_total[5m]))", "lines"),
                                         ("sum(rate(jairouter_report_truncated_total[5m]))", "truncated")], unit="ops"),
        panel("Label cardinality: names with series of their own, and the cap", [
            ("max by (label) (jairouter_tenant_series_names)", "{{label}} names"),
            ("max by (label) (jairouter_tenant_series_cap)", "{{label}} cap")], w=24),
    ])


DASHBOARDS = {"fleet-overview": fleet, "tenant-usage": tenants, "models-backends": models,
              "limits-quotas": limits, "agent": agent}


def main():
    check = "--check" in sys.argv[1:]
    stale = 0
    os.makedirs(OUT, exist_ok=True)
    for name, fn in DASHBOARDS.items():
        path = os.path.join(OUT, f"jairouter-{name}.json")
        text = json.dumps(fn(), indent=2, sort_keys=True) + "\n"
        old = open(path).read() if os.path.exists(path) else None
        if check:
            if old != text:
                print(f"out of date: {path}")
                stale = 1
        elif old != text:
            with open(path, "w") as f:
                f.write(text)
    return stale


if __name__ == "__main__":
    sys.exit(main())
