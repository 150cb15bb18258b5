"""The training run of the profile-guided build (tools/pgo/build.sh): hook
calls made from the repository's own clinical charts, sent over HTTP to an
instrumented server.

The charts are tests/scenarios/*.json (313 small records, every rule and
hook) and the example charts of cds-hooks/examples/ (the sandbox's
patients). They are not the load harness's bodies (tools/load/requests.py),
so the harness measures a build that was not trained on what it sends.

    python3 tools/pgo/train.py service http://127.0.0.1:PORT [ROUNDS]
    python3 tools/pgo/train.py ceiling http://127.0.0.1:PORT [ROUNDS]

`service` posts each call to its hook's service (found in discovery);
`ceiling` posts the same bodies to examples/ceiling.rs's /read and /lex, so
that the ceiling is built the same way. Any answer but 200 stops the run:
a profile of error paths would train the wrong code.
"""
import datetime
import glob
import http.client
import json
import os
import re
import sys
import threading
import urllib.parse
import uuid

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")

# Where each resource type of a chart goes in the services' prefetch
# (cds-hooks/services.json). Encounters of an inpatient class go where the
# class query puts them (inpatientEncounters), the others to visitsByReason.
SEARCH_KEYS = {
    "Condition": "conditions",
    "MedicationRequest": "medicationRequests",
    "MedicationStatement": "medicationStatements",
    "Observation": "observations",
    "Procedure": "procedures",
    "ServiceRequest": "serviceRequests",
    "DiagnosticReport": "diagnosticReports",
    "ImagingStudy": "imagingStudies",
}
INPATIENT = {"IMP", "ACUTE", "NONAC"}


DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})(.*)$")


def shifted(value, days):
    """The chart moved in time by `days`: every date and dateTime, so that a
    chart written for a fixed day (a scenario's `now`, the examples' asOf)
    reads today as it read then, and the rules take the branches it was
    written for."""
    if isinstance(value, dict):
        return {k: shifted(v, days) for k, v in value.items()}
    if isinstance(value, list):
        return [shifted(v, days) for v in value]
    if isinstance(value, str):
        m = DATE.match(value)
        if m:
            try:
                day = datetime.date.fromisoformat(m.group(1))
            except ValueError:
                return value
            return (day + datetime.timedelta(days=days)).isoformat() + m.group(2)
    return value


def days_since(day):
    return (datetime.datetime.now(datetime.timezone.utc).date() - datetime.date.fromisoformat(day[:10])).days


def searchset(resources):
    return {"resourceType": "Bundle", "type": "searchset", "total": len(resources),
            "entry": [{"resource": r} for r in resources]}


def hook_request(hook, chart, draft_orders=None, selections=(), encounter_id=None):
    resources = [e["resource"] for e in chart.get("entry", []) if "resource" in e]
    patient = next(r for r in resources if r.get("resourceType") == "Patient")
    groups = {key: [] for key in list(SEARCH_KEYS.values()) + ["inpatientEncounters", "visitsByReason"]}
    for r in resources:
        kind = r.get("resourceType")
        if kind in SEARCH_KEYS:
            groups[SEARCH_KEYS[kind]].append(r)
        elif kind == "Encounter":
            inpatient = r.get("class", {}).get("code") in INPATIENT
            groups["inpatientEncounters" if inpatient else "visitsByReason"].append(r)
    prefetch = {"patient": patient, "visitsByType": searchset([])}
    prefetch.update({key: searchset(found) for key, found in groups.items()})
    context = {"userId": "Practitioner/pgo-training", "patientId": patient["id"]}
    if encounter_id:
        context["encounterId"] = encounter_id
        prefetch["encounter"] = next((r for r in resources if r.get("resourceType") == "Encounter"
                                      and r.get("id") == encounter_id), None)
    if hook in ("order-select", "order-sign"):
        context["draftOrders"] = draft_orders or searchset([])
        if hook == "order-select":
            context["selections"] = list(selections)
    return {"hook": hook, "hookInstance": str(uuid.uuid4()), "context": context, "prefetch": prefetch}


def training_calls():
    calls = []
    for path in sorted(glob.glob(os.path.join(ROOT, "tests", "scenarios", "*.json"))):
        s = json.load(open(path))
        s = shifted(s, days_since(s["now"]))
        calls.append((s["hook"], hook_request(s["hook"], s["record"], s.get("draftOrders"),
                                              s.get("selections", ()), s.get("encounterId"))))
    examples = os.path.join(ROOT, "cds-hooks", "examples")
    drafts = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(examples, "draft-orders", "*.json")))]
    as_of = json.load(open(os.path.join(examples, "index.json")))["asOf"]
    drafts = shifted(drafts, days_since(as_of))
    for path in sorted(glob.glob(os.path.join(examples, "*.json"))):
        chart = json.load(open(path))
        if chart.get("resourceType") != "Bundle":
            continue
        chart = shifted(chart, days_since(as_of))
        calls.append(("patient-view", hook_request("patient-view", chart)))
        patient = next(e["resource"]["id"] for e in chart["entry"] if e["resource"]["resourceType"] == "Patient")
        for draft in drafts:
            # Each draft is one order: for this patient, in the Bundle the hook sends.
            order = dict(draft, subject={"reference": f"Patient/{patient}"})
            orders = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": order}]}
            calls.append(("order-sign", hook_request("order-sign", chart, orders)))
    return [(hook, json.dumps(body).encode()) for hook, body in calls]


def post_all(base, paths_and_bodies, rounds, failures):
    url = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    for _ in range(rounds):
        for path, body in paths_and_bodies:
            conn.request("POST", path, body, {"Content-Type": "application/json"})
            answer = conn.getresponse()
            answer.read()
            if answer.status != 200:
                failures.append(f"{path}: HTTP {answer.status}")
                return
    conn.close()


def main():
    mode, base = sys.argv[1], sys.argv[2].rstrip("/")
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    calls = training_calls()
    if mode == "service":
        url = urllib.parse.urlsplit(base)
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        conn.request("GET", "/cds-services")
        services = {s["hook"]: s["id"] for s in json.load(conn.getresponse())["services"]}
        work = [(f"/cds-services/{services[hook]}", body) for hook, body in calls]
    elif mode == "ceiling":
        work = [(path, body) for _, body in calls for path in ("/read", "/lex")]
    else:
        sys.exit(f"unknown mode {mode!r}: service or ceiling")
    # Two clients, as the server has two workers here: the cross-thread
    # paths (the store's queue, the pools) are trained as they run.
    failures = []
    threads = [threading.Thread(target=post_all, args=(base, work[i::2], rounds, failures)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        sys.exit(f"training stopped: {failures[0]}")
    print(f"trained {mode}: {len(work)} calls x {rounds} rounds "
          f"({sum(len(b) for _, b in work) // len(work)} bytes on average)")


if __name__ == "__main__":
    main()
