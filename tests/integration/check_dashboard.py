#!/usr/bin/python3
"""Checks a Grafana dashboard against a scrape of the real server.

Usage: check_dashboard.py DASHBOARD.json METRICS.txt

Fails unless the dashboard parses as JSON, has panels, every panel has at
least one query, and every metric a query (or a template variable) names
is one the scrape (Prometheus text format) exports. Prints each metric
checked.
"""
import json
import re
import sys

# PromQL words that look like metric names but are not.
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right",
            "and", "or", "unless", "bool", "offset", "inf", "nan"}


def exported(path):
    """Metric names in a scrape, with a histogram's _bucket/_sum/_count."""
    names = set()
    for line in open(path):
        m = re.match(r"# TYPE (\S+) (\S+)", line)
        if not m:
            continue
        name, kind = m.groups()
        names.add(name)
        if kind in ("histogram", "summary"):
            names.update(name + s for s in ("_bucket", "_sum", "_count"))
    return names


def named_metrics(expr):
    """The metric names a PromQL expression selects."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)",
                  "", expr)  # label lists
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
        word = m.group(0)
        rest = expr[m.end():].lstrip()
        if rest.startswith("("):  # a function
            continue
        if word.lower() in KEYWORDS or word.startswith("$"):
            continue
        if m.start() > 0 and expr[m.start() - 1] == "$":  # a variable
            continue
        names.add(word)
    return names


def main(dashboard_path, metrics_path):
    dashboard = json.load(open(dashboard_path))
    metrics = exported(metrics_path)
    panels = dashboard.get("panels", [])
    if not panels:
        sys.exit("%s: no panels" % dashboard_path)
    failures = []
    queries = []
    for panel in panels:
        targets = [t.get("expr", "") for t in panel.get("targets", [])]
        if not any(targets):
            failures.append("panel %r has no query" % panel.get("title"))
        queries += [(panel.get("title"), e) for e in targets if e]
    for var in dashboard.get("templating", {}).get("list", []):
        query = var.get("query")
        if isinstance(query, dict):
            query = query.get("query", "")
        m = re.match(r"label_values\((.*),\s*\w+\)$", query or "")
        if m:
            queries.append(("variable " + var["name"], m.group(1)))
    for where, expr in queries:
        names = named_metrics(expr)
        if not names:
            failures.append("%s: %r names no metric" % (where, expr))
        for name in sorted(names):
            if name in metrics:
                print("ok %s: %s" % (where, name))
            else:
                failures.append("%s: %s is not exported" % (where, name))
    if failures:
        sys.exit("\n".join(failures))


if __name__ == "__main__":
    main(*sys.argv[1:])
