#!/usr/bin/env python3
"""Population run (clinical-rules.md r2, issue #18 item 5).

Adds a documented leg cramp (ICD-10-CM R25.2, active, onset 14 days before the
evaluation time) to every patient Bundle given, evaluates each with
`cramp-cds evaluate`, and prints how many patients get each card and finding,
and every error. Standard library only.

Usage:
    python3 tools/population/run.py [--binary target/release/cramp-cds] [--at 2026-11-30T12:00:00Z]
        [--json OUT.json] BUNDLE_OR_DIR...

Directories are searched for *.json Bundles (Synthea's hospital and
practitioner information files, which hold no Patient, are skipped).
"""

import argparse
import collections
import datetime
import json
import os
import subprocess
import sys
import tempfile


def bundles(paths):
    for path in paths:
        if os.path.isdir(path):
            for root, _, files in os.walk(path):
                for name in sorted(files):
                    if name.endswith(".json"):
                        yield os.path.join(root, name)
        else:
            yield path


def with_cramp(bundle, at):
    patients = [e["resource"] for e in bundle.get("entry", []) if e.get("resource", {}).get("resourceType") == "Patient"]
    if not patients:
        return None
    patient = patients[0]
    subject = "Patient/%s" % patient["id"] if patient.get("id") else None
    onset = (at - datetime.timedelta(days=14)).strftime("%Y-%m-%dT%H:%M:%SZ")
    cramp = {
        "resourceType": "Condition", "id": "population-run-cramp",
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
        "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed"}]},
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "R25.2", "display": "Cramp and spasm"}],
                 "text": "Leg cramps"},
        "onsetDateTime": onset, "recordedDate": onset,
    }
    if subject:
        cramp["subject"] = {"reference": subject}
    bundle = dict(bundle)
    bundle["entry"] = list(bundle.get("entry", [])) + [{"fullUrl": "urn:uuid:population-run-cramp", "resource": cramp}]
    return bundle


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", default="target/release/cramp-cds")
    parser.add_argument("--at", default=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    parser.add_argument("--json", help="also write the tallies here")
    parser.add_argument("paths", nargs="+")
    args = parser.parse_args()
    at = datetime.datetime.strptime(args.at, "%Y-%m-%dT%H:%M:%SZ")

    patients = 0
    cards = collections.Counter()
    findings = collections.Counter()
    indicators = collections.Counter()
    outdated_only = 0
    errors = []
    skipped = 0
    for path in bundles(args.paths):
        with open(path, encoding="utf-8") as f:
            try:
                bundle = json.load(f)
            except ValueError as e:
                errors.append("%s: not JSON (%s)" % (path, e))
                continue
        if bundle.get("resourceType") != "Bundle":
            skipped += 1
            continue
        bundle = with_cramp(bundle, at)
        if bundle is None:
            skipped += 1
            continue
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as tmp:
            json.dump(bundle, tmp)
        try:
            run = subprocess.run([args.binary, "evaluate", "--at", args.at, tmp.name], capture_output=True, text=True)
        finally:
            os.unlink(tmp.name)
        if run.returncode != 0:
            errors.append("%s: exit %d: %s" % (path, run.returncode, run.stderr.strip()[:300]))
            continue
        response = json.loads(run.stdout)
        patients += 1
        for card in response["cards"]:
            topic = card["source"]["topic"]["code"]
            cards[topic] += 1
            indicators["%s/%s" % (topic, card["indicator"])] += 1
            codes = set()
            for finding in card.get("extension", {}).get("cramp-cds", {}).get("findings", []):
                codes.add(finding["code"])
            for code in codes:
                findings["%s: %s" % (topic, code)] += 1
            if topic == "medication-culprits":
                found = card["extension"]["cramp-cds"]["findings"]
                if found and all(f.get("possiblyOutdated") and len(f["possiblyOutdated"]) == len(f["evidence"]) for f in found):
                    outdated_only += 1

    print("patients evaluated: %d (skipped %d files without a Patient); errors: %d" % (patients, skipped, len(errors)))
    for error in errors:
        print("  error: " + error)
    print("cards (patients with the card):")
    for topic, n in sorted(cards.items()):
        print("  %-22s %4d" % (topic, n))
    print("indicators:")
    for key, n in sorted(indicators.items()):
        print("  %-30s %4d" % (key, n))
    print("findings (patients with the finding on that card):")
    for key, n in sorted(findings.items()):
        print("  %-45s %4d" % (key, n))
    print("culprit cards resting only on possibly outdated orders: %d" % outdated_only)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"patients": patients, "errors": errors, "cards": cards, "indicators": indicators,
                       "findings": findings, "culpritCardsOnlyOutdated": outdated_only}, f, indent=1, sort_keys=True)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
