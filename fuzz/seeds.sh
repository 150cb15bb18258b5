#!/usr/bin/env bash
# Builds the seed corpora from the scenario fixtures and the shared sample
# bundles (copies; nothing is committed): fuzz/corpus/{hook_request,bundle_reader}.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p corpus/hook_request corpus/bundle_reader
python3 - <<'PY'
import glob, json, os, uuid
out = "corpus"
def write(target, name, data):
    with open(os.path.join(out, target, name), "w") as f:
        f.write(data)
for path in sorted(glob.glob("../tests/scenarios/*.json")):
    s = json.load(open(path))
    name = os.path.basename(path)
    write("bundle_reader", name, json.dumps(s["record"]))
    by_type = {}
    for e in s["record"]["entry"]:
        by_type.setdefault(e["resource"]["resourceType"], []).append(e["resource"])
    bundle = lambda rs: {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in rs]} if rs else None
    request = {"hook": s["hook"], "hookInstance": str(uuid.uuid4()),
               "context": {"userId": "Practitioner/1", "patientId": "p1"},
               "prefetch": {"patient": (by_type.get("Patient") or [None])[0], "conditions": bundle(by_type.get("Condition")),
                            "medicationRequests": bundle(by_type.get("MedicationRequest", []) + by_type.get("Medication", [])),
                            "observations": bundle(by_type.get("Observation")), "procedures": bundle(by_type.get("Procedure")),
                            "encounters": bundle(by_type.get("Encounter")), "medicationStatements": bundle(by_type.get("MedicationStatement"))}}
    if s.get("draftOrders"):
        request["context"]["draftOrders"] = s["draftOrders"]
        request["context"]["selections"] = s.get("selections", [])
    write("hook_request", name, json.dumps(request))
for path in sorted(glob.glob("../../shared/samples/synthea/*.json"))[:3]:
    write("bundle_reader", os.path.basename(path), open(path).read())
PY
echo "seeds: $(ls corpus/hook_request | wc -l) hook requests, $(ls corpus/bundle_reader | wc -l) bundles"
