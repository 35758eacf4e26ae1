#!/usr/bin/env python3
"""Validate the Prometheus Operator objects of a rendered manifest offline, against the
operator's CRD schemas as the PyPI package cloudcoil-models-prometheus-operator carries them
(pydantic models generated from the published CRDs of operator v0.80.1; their JSON schema is
what is checked), and write the PrometheusRule groups as a Prometheus rule file for
`promtool check rules`.

    scripts/crd-check.py MANIFEST RULES_OUT

Strict like `kubernetes-validate --strict`: a field the schema does not declare is an error
(the API server would prune it silently), except under x-kubernetes-preserve-unknown-fields.
Exit 1 on any error, or when the manifest has no ServiceMonitor or no PrometheusRule.
"""
import importlib.metadata
import sys

import jsonschema
import yaml
from cloudcoil.models.prometheus_operator import v1

PACKAGE = "cloudcoil-models-prometheus-operator"
SCHEMAS = {
    "ServiceMonitor": v1.ServiceMonitor,
    "PrometheusRule": v1.PrometheusRule,
}


def strict(schema):
    """The schema with undeclared properties refused where it declares properties."""
    if isinstance(schema, dict):
        out = {k: strict(v) for k, v in schema.items()}
        if (
            out.get("type") == "object"
            and "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


def main(manifest, rules_out):
    version = f"{PACKAGE} {importlib.metadata.version(PACKAGE)}"
    validators = {}
    for kind, model in SCHEMAS.items():
        schema = strict(model.model_json_schema(by_alias=True))
        # metadata is the API server's ObjectMeta, not the CRD's to describe.
        schema["properties"]["metadata"] = {"type": "object"}
        validators[kind] = jsonschema.Draft202012Validator(schema)
    seen = {kind: 0 for kind in SCHEMAS}
    errors = 0
    groups = []
    for doc in yaml.safe_load_all(open(manifest)):
        if not isinstance(doc, dict) or doc.get("kind") not in SCHEMAS:
            continue
        kind = doc["kind"]
        seen[kind] += 1
        if doc.get("apiVersion") != "monitoring.coreos.com/v1":
            print(f"crd: {kind}: apiVersion {doc.get('apiVersion')}", file=sys.stderr)
            errors += 1
        for e in sorted(validators[kind].iter_errors(doc), key=lambda e: list(e.path)):
            path = "/".join(str(p) for p in e.path)
            print(f"crd: {kind}/{doc['metadata'].get('name')}: {path}: {e.message}", file=sys.stderr)
            errors += 1
        if kind == "PrometheusRule":
            groups += doc["spec"]["groups"]
    for kind, n in seen.items():
        if n == 0:
            print(f"crd: no {kind} in {manifest}", file=sys.stderr)
            errors += 1
    with open(rules_out, "w") as f:
        yaml.safe_dump({"groups": groups}, f, sort_keys=False)
    if errors:
        return 1
    print(f"crd: {', '.join(f'{n} {k}' for k, n in seen.items())} valid against {version} schemas")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
