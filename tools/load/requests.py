"""Writes the load test's request bodies: realistic patient-view and
order-sign calls of about 4 KB and 100 KB (a chart with documented cramps,
a diuretic, a statin and potassium results)."""
import json
import sys
import uuid

def observation(i):
    return {"resource": {
        "resourceType": "Observation", "id": f"k{i}", "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "2823-3", "display": "Potassium [Moles/volume] in Serum or Plasma"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": f"2026-{1 + i % 11:02d}-{1 + i % 27:02d}T08:00:00Z",
        "valueQuantity": {"value": round(3.2 + (i % 10) / 10, 1), "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"}}}

def medicine(id_, code, display, status="active"):
    return {"resourceType": "MedicationRequest", "id": id_, "status": status, "intent": "order",
            "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": code, "display": display}]},
            "subject": {"reference": "Patient/p1"}, "authoredOn": "2025-02-01"}

def request(hook, labs):
    body = {
        "hook": hook, "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/1", "patientId": "p1"},
        "prefetch": {
            "patient": {"resourceType": "Patient", "id": "p1", "birthDate": "1948-05-02", "gender": "female"},
            "conditions": {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": {
                "resourceType": "Condition", "id": "cramp",
                "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
                "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "R25.2", "display": "Cramp and spasm"}]},
                "subject": {"reference": "Patient/p1"}, "recordedDate": "2026-03-01"}}]},
            "medicationRequests": {"resourceType": "Bundle", "type": "searchset", "entry": [
                {"resource": medicine("furosemide", "313988", "furosemide 40 MG Oral Tablet")},
                {"resource": medicine("simvastatin", "314231", "simvastatin 10 MG Oral Tablet")}]},
            "observations": {"resourceType": "Bundle", "type": "searchset", "entry": [observation(i) for i in range(labs)]},
            "procedures": None, "inpatientEncounters": None, "visitsByReason": None, "visitsByType": None, "medicationStatements": None,
        },
    }
    if hook == "order-sign":
        body["context"]["draftOrders"] = {"resourceType": "Bundle", "type": "collection", "entry": [
            {"resource": medicine("draft-quinine", "9071", "quinine", status="draft")}]}
    return body

def main(out):
    for hook, name in [("patient-view", "patient-view"), ("order-sign", "order-sign")]:
        for size, labs in [("4k", 6), ("100k", 240)]:
            text = json.dumps(request(hook, labs), separators=(",", ":"))
            with open(f"{out}/{name}-{size}.json", "w") as f:
                f.write(text)
            print(f"{name}-{size}.json: {len(text)} bytes")

if __name__ == "__main__":
    main(sys.argv[1])
