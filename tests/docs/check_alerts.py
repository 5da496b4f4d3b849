#!/usr/bin/env python3
"""Checks docs/prometheus-alerts.yml: valid YAML in the shape of a Prometheus rule file (groups
of rules, each alert with an expr, labels.severity and summary and description annotations),
unique alert names, and every keel_ metric it uses named in README.md's metrics section (the
integration test test_metrics checks that keeld serves each of them).

usage: check_alerts.py ALERTS.yml README.md"""
import re
import sys

import yaml  # Debian: python3-yaml


def fail(msg):
    print(f"check_alerts: {msg}", file=sys.stderr)
    sys.exit(1)


def main():
    if len(sys.argv) != 3:
        fail(__doc__)
    alerts_path, readme_path = sys.argv[1], sys.argv[2]
    try:
        with open(alerts_path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
    except yaml.YAMLError as e:
        fail(f"{alerts_path}: not valid YAML: {e}")
    if not isinstance(doc, dict) or set(doc) != {"groups"} or not isinstance(doc["groups"], list):
        fail("the top level must be {groups: [...]}")
    names = set()
    metrics = set()
    for g, group in enumerate(doc["groups"]):
        where = f"groups[{g}]"
        if not isinstance(group, dict) or not isinstance(group.get("name"), str):
            fail(f"{where}: a group needs a name")
        if not isinstance(group.get("rules"), list) or not group["rules"]:
            fail(f"{where}: a group needs rules")
        for r, rule in enumerate(group["rules"]):
            where = f"groups[{g}].rules[{r}]"
            if not isinstance(rule, dict):
                fail(f"{where}: not a mapping")
            unknown = set(rule) - {"alert", "expr", "for", "labels", "annotations"}
            if unknown:
                fail(f"{where}: unknown keys {sorted(unknown)}")
            name = rule.get("alert")
            if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                fail(f"{where}: alert must be a name")
            if name in names:
                fail(f"{where}: alert {name} twice")
            names.add(name)
            expr = rule.get("expr")
            if not isinstance(expr, str) or not expr.strip():
                fail(f"{name}: expr must be a string")
            if expr.count("(") != expr.count(")") or expr.count("{") != expr.count("}"):
                fail(f"{name}: unbalanced brackets in expr")
            if "for" in rule and not re.fullmatch(r"\d+[smhd]", str(rule["for"])):
                fail(f"{name}: for must be a duration such as 5m")
            labels = rule.get("labels")
            if not isinstance(labels, dict) or labels.get("severity") not in (
                "critical",
                "warning",
                "info",
            ):
                fail(f"{name}: labels.severity must be critical, warning or info")
            ann = rule.get("annotations")
            for key in ("summary", "description"):
                if not isinstance(ann, dict) or not isinstance(ann.get(key), str) or not ann[key]:
                    fail(f"{name}: annotations.{key} is missing")
            metrics.update(re.findall(r"\bkeel_[a-z_]+", expr))
    with open(readme_path, encoding="utf-8") as f:
        readme = f.read()
    for m in sorted(metrics):
        if f"`{m}`" not in readme:
            fail(f"{m} is used by an alert but not described in {readme_path}")
    print(f"check_alerts: {len(names)} alerts, {len(metrics)} metrics, all documented")


if __name__ == "__main__":
    main()
