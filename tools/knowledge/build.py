#!/usr/bin/env python3
"""Build the cramp-cds clinical knowledge base (JSON data files).

Usage:
    python3 tools/knowledge/build.py [KNOWLEDGE_SOURCES_DIR]

KNOWLEDGE_SOURCES_DIR defaults to ../shared/knowledge-sources relative to the
repository root.  Output goes to cds-hooks/knowledge/ in the repository:

    valuesets/<id>.json   FHIR R4 ValueSet resources (one per value set)
    drug-classes.json     medication classes (ingredients, brands, ATC, products)
    labs.json             electrolyte lab definitions and default low limits

Every code comes either from clinical-rules.md (the hand-curated literal tables
below, each naming the section and source) or from the knowledge-sources files
(VSAC value-set extracts, Synthea module codes, Synthea hypertension drug
table).  Standard library only; the output is deterministic (sorted codes,
fixed version date), so a rerun on the same inputs gives identical files.
"""

import csv
import json
import os
import re
import sys
from collections import OrderedDict, defaultdict

# ---------------------------------------------------------------------------
# Constants
# ---------------------------------------------------------------------------

VERSION = "2026-11-30"  # knowledge-base version date (fixed: keeps reruns identical)

BASE = "https://cramp-cds.example.org/fhir"
SOURCE_EXT = "https://cramp-cds.example.org/fhir/StructureDefinition/source"
FINDING_SYSTEM = "https://cramp-cds.example.org/fhir/CodeSystem/finding"
USAGE_CONTEXT_TYPE = "http://terminology.hl7.org/CodeSystem/usage-context-type"

SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ATC = "http://www.whocc.no/atc"
CPT = "http://www.ama-assn.org/go/cpt"
ICD10PCS = "http://www.cms.gov/Medicare/Coding/ICD10"
HCPCS = "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"

# System spellings used in the knowledge-sources files -> canonical URLs.
# None = dropped (ICD-9-CM is not used).
SYSTEM_MAP = {
    "http://snomed.info/sct": SNOMED,
    "SNOMED-CT": SNOMED,
    "http://hl7.org/fhir/sid/icd-10-cm": ICD10CM,
    "http://loinc.org": LOINC,
    "LOINC": LOINC,
    "http://www.nlm.nih.gov/research/umls/rxnorm": RXNORM,
    "RxNorm": RXNORM,
    "http://www.ama-assn.org/go/cpt": CPT,
    "http://www.cms.gov/Medicare/Coding/ICD10": ICD10PCS,
    "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets": HCPCS,
    "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets": HCPCS,
    "http://www.nlm.nih.gov/research/umls/hcpcs": HCPCS,
    "http://terminology.hl7.org/CodeSystem/icd9cm": None,
}

SYNTHEA_COMMIT = "0a934f8"

# Short source names used in "clinical-rules.md §N (...)" citations.
S_BMJ = "BMJ Best Practice 2012"
S_DXPAD = "Diagnosis Pad 2025"
S_CARENOTES = "CareNotes 2022"
S_ALLEN = "Allen & Kirby 2012"
S_WELLS = "Wells 2003; NICE NG158"


def rules(section, short):
    return "clinical-rules.md \u00a7%d (%s)" % (section, short)


# ---------------------------------------------------------------------------
# Loading the knowledge sources
# ---------------------------------------------------------------------------


class Sources(object):
    def __init__(self, root):
        self.root = root
        self.vsdir = os.path.join(root, "value-sets")
        self.readme_versions, self.readme_names = self._parse_readme()
        self._cache = {}
        self.synthea = self._load_synthea()
        self.htn = self._load_htn()

    # README table: file -> value set name; OID -> versions
    def _parse_readme(self):
        versions = defaultdict(set)
        names = {}
        path = os.path.join(self.root, "README.md")
        with open(path, encoding="utf-8") as f:
            for line in f:
                if not (line.startswith("| ") and ".tsv" in line):
                    continue
                cells = [c.strip() for c in line.strip().strip("|").split("|")]
                if len(cells) < 5:
                    continue
                names[cells[1]] = cells[0]
                for oid, ver in re.findall(r"([0-9][0-9.]*[0-9](?:-\d{8})?) \((\d{8})\)", cells[4]):
                    base, _ = split_oid(oid)
                    versions[base].add(ver)
        return versions, names

    def extract(self, stem):
        """Rows of value-sets/<stem>.tsv as (system, code, display, valueset_id),
        system mapped to its canonical URL, ICD-9-CM dropped."""
        if stem in self._cache:
            return self._cache[stem]
        rows = []
        path = os.path.join(self.vsdir, stem + ".tsv")
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.reader(f, delimiter="\t")
            header = next(reader)
            assert header[:4] == ["system", "code", "display", "valueset_id"], header
            for row in reader:
                if len(row) < 4:
                    continue
                system = SYSTEM_MAP.get(row[0], "UNKNOWN")
                if system is None:
                    continue
                if system == "UNKNOWN":
                    raise SystemExit("unknown system %r in %s" % (row[0], stem))
                rows.append((system, row[1].strip(), row[2].strip(), row[3].strip()))
        self._cache[stem] = rows
        return rows

    def vs_name(self, stem):
        return self.readme_names.get(stem + ".tsv", stem.replace("_", " "))

    def cite(self, stem, valueset_ids):
        """'VSAC <OID> (<versions>), ... <value set name>' for the given row ids."""
        per_oid = defaultdict(set)
        for vid in valueset_ids:
            base, ver = split_oid(vid)
            if ver:
                per_oid[base].add(ver)
            else:
                per_oid[base].update(self.readme_versions.get(base, set()))
        parts = []
        for base in sorted(per_oid):
            vers = sorted(per_oid[base])
            parts.append("%s (%s)" % (base, ", ".join(vers) if vers else "version not stated"))
        return "VSAC %s %s" % (", ".join(parts), self.vs_name(stem))

    def _load_synthea(self):
        rows = []
        path = os.path.join(self.root, "synthea_module_codes.tsv")
        with open(path, encoding="utf-8", newline="") as f:
            for row in csv.reader(f, delimiter="\t"):
                if len(row) < 4:
                    continue
                system = SYSTEM_MAP.get(row[0])
                if system is None:
                    continue
                rows.append((system, row[1].strip(), row[2].strip(), row[3].strip()))
        return rows

    def _load_htn(self):
        rows = []
        path = os.path.join(self.root, "synthea_htn_drugs.csv")
        with open(path, encoding="utf-8", newline="") as f:
            for rec in csv.DictReader(f):
                rows.append((RXNORM, rec["RxNorm"].strip(), rec["Display"].strip(), "synthea_htn_drugs.csv"))
        return rows

    def synthea_rows(self, system, codes):
        want = set(codes)
        return [r for r in self.synthea if r[0] == system and r[1] in want]


def split_oid(vid):
    m = re.match(r"^(.*\d)-(\d{8})$", vid)
    if m:
        return m.group(1), m.group(2)
    return vid, None


def synthea_cite(modules):
    mods = set()
    for m in modules:
        mods.update(x for x in m.split(",") if x)
    return "Synthea module codes (commit %s): %s" % (SYNTHEA_COMMIT, ", ".join(sorted(mods)))


HTN_CITE = "Synthea hypertension drug table: synthea_htn_drugs.csv"

SEMANTIC_TAG = re.compile(
    r"\s+\((disorder|finding|procedure|situation|person|morphologic abnormality|"
    r"regime/therapy|substance|product|event|qualifier value)\)$")


def short_display(system, display):
    if system == SNOMED:
        return SEMANTIC_TAG.sub("", display)
    return display


def icd_nodot(code):
    return code.replace(".", "")


# ---------------------------------------------------------------------------
# Value sets
# ---------------------------------------------------------------------------

LOG = []  # judgement-call log printed at the end


def log(msg):
    LOG.append(msg)


class ValueSet(object):
    def __init__(self, vsid, finding, title, description):
        self.id = vsid
        self.finding = finding
        self.title = title
        self.description = description
        self.includes = []  # dicts: system, source, concepts(list) | filter(str)

    def concepts(self, system, source, pairs):
        self.includes.append({"system": system, "source": source, "concepts": list(pairs)})
        return self

    def isa(self, system, source, prefixes):
        for p in prefixes:
            self.includes.append({"system": system, "source": source, "filter": p})
        return self

    def from_rows(self, rows, source_fn):
        """rows: (system, code, display, provenance). One include per system."""
        by_sys = OrderedDict()
        for r in rows:
            by_sys.setdefault(r[0], []).append(r)
        for system in sorted(by_sys):
            rs = by_sys[system]
            self.includes.append({
                "system": system,
                "source": source_fn([r[3] for r in rs]),
                "concepts": [(r[1], short_display(system, r[2])) for r in rs],
            })
        return self

    # -- finalisation ------------------------------------------------------
    def _prefixes(self, system):
        return [inc["filter"] for inc in self.includes if inc["system"] == system and "filter" in inc]

    def covered(self, system, code):
        for p in self._prefixes(system):
            if system == ICD10CM:
                if icd_nodot(code).startswith(icd_nodot(p)):
                    return True
            elif code.startswith(p):
                return True
        return False

    def resource(self):
        seen = set()
        out = []
        filters_seen = set()
        for inc in self.includes:
            system = inc["system"]
            if "filter" in inc:
                key = (system, inc["filter"])
                if key in filters_seen:
                    continue
                filters_seen.add(key)
                out.append((inc, None))
                continue
            concepts = {}
            for code, display in inc["concepts"]:
                key = (system, code)
                if key in seen:
                    continue
                if self.covered(system, code):
                    continue
                if code in concepts:
                    continue
                concepts[code] = display
                seen.add(key)
            if concepts:
                out.append((inc, concepts))

        def sort_key(item):
            inc, concepts = item
            rank = 0 if inc["source"].startswith("clinical-rules") else 1 if inc["source"].startswith("VSAC") else 2
            return (inc["system"], 0 if concepts is not None else 1, inc.get("filter", ""), rank, inc["source"])

        include_json = []
        for inc, concepts in sorted(out, key=sort_key):
            j = OrderedDict()
            j["system"] = inc["system"]
            j["extension"] = [OrderedDict([("url", SOURCE_EXT), ("valueString", inc["source"])])]
            if concepts is None:
                j["filter"] = [OrderedDict([("property", "concept"), ("op", "is-a"), ("value", inc["filter"])])]
            else:
                j["concept"] = [OrderedDict([("code", c), ("display", concepts[c])])
                                for c in sorted(concepts, key=code_sort_key)]
            include_json.append(j)

        r = OrderedDict()
        r["resourceType"] = "ValueSet"
        r["id"] = self.id
        r["url"] = "%s/ValueSet/%s" % (BASE, self.id)
        r["name"] = "".join(part.capitalize() for part in self.id.split("-"))
        r["title"] = self.title
        r["status"] = "active"
        r["description"] = self.description
        r["useContext"] = [OrderedDict([
            ("code", OrderedDict([("system", USAGE_CONTEXT_TYPE), ("code", "focus")])),
            ("valueCodeableConcept", OrderedDict([("coding", [OrderedDict([
                ("system", FINDING_SYSTEM), ("code", self.finding)])])])),
        ])]
        r["compose"] = OrderedDict([("include", include_json)])
        return r


def code_sort_key(code):
    # numeric codes sort numerically, others lexically
    if code.isdigit():
        return (0, len(code), code)
    return (1, 0, code)


def rows_of(src, stem, systems=None, keep=None, why=None):
    """Select rows of an extract; keep(system, code, display) -> bool.
    Rejected rows are logged with the reason 'why'."""
    out = []
    rejected = OrderedDict()
    for r in src.extract(stem):
        if systems and r[0] not in systems:
            continue
        if keep is None or keep(r[0], r[1], r[2]):
            out.append(r)
        else:
            rejected[(r[0], r[1])] = r[2]
    if rejected and why:
        log("%s: excluded %d code(s) (%s): %s" % (
            stem, len(rejected), why,
            "; ".join("%s %s" % (c, short_display(s, d)) for (s, c), d in sorted(rejected.items()))))
    return out


def vsac(src, stem):
    return lambda ids: src.cite(stem, ids)


# ----- hand-curated tables (clinical-rules.md) ------------------------------
# Each entry: code -> short display (ICD-10-CM displays follow the public
# classification; SNOMED CT displays are short labels; CPT displays are our
# own words).

LEG_CRAMPS_ICD = [("R25.2", "Cramp and spasm"), ("G47.62", "Sleep related leg cramps"),
                  ("M62.831", "Muscle spasm of calf")]
LEG_CRAMPS_SCT = [("55300003", "Cramp"), ("449918009", "Cramp in lower leg")]

PREGNANCY_SCT = [("77386006", "Pregnancy"), ("72892002", "Normal pregnancy"),
                 ("47200007", "High risk pregnancy"), ("255409004", "Pregnant woman")]

# r2: deliveries (Condition or Procedure) end a pregnancy and start the 42
# postpartum days; the SNOMED codes are the ones clinical-rules.md names.
DELIVERY_ICD = [("O80", "Encounter for full-term uncomplicated delivery"),
                ("O82", "Encounter for cesarean delivery without indication")]
DELIVERY_SCT = [("11466000", "Cesarean section"), ("177157003", "Spontaneous breech delivery"),
                ("236974004", "Instrumental delivery")]
PREGNANCY_OUTCOME_SYNTHEA = ["156073000", "19169002", "85116003", "714812005", "445912000",
                             "79586000", "236931002", "35999006"]

DIALYSIS_PROC_SCT = [("265764009", "Renal dialysis"), ("302497006", "Hemodialysis"),
                     ("108241001", "Dialysis procedure"), ("71192002", "Peritoneal dialysis"),
                     ("238318009", "Continuous ambulatory peritoneal dialysis"),
                     ("714749008", "Continuous renal replacement therapy")]
DIALYSIS_CPT_RANGE = (90935, 90999)
DIALYSIS_COND_SCT = [("105502003", "Dependence on renal dialysis"),
                     ("236435004", "End stage renal failure on dialysis"),
                     ("714152005", "Dialysis dependence")]

KIDNEY_SCT = [("709044004", "Chronic kidney disease"), ("431855005", "Chronic kidney disease stage 1"),
              ("431856006", "Chronic kidney disease stage 2"), ("433144002", "Chronic kidney disease stage 3"),
              ("431857002", "Chronic kidney disease stage 4"), ("433146000", "Chronic kidney disease stage 5"),
              ("46177005", "End-stage renal disease")]

DIABETES_ICD = ["E08", "E09", "E10", "E11", "E13"]
DIABETIC_KIDNEY_SYNTHEA = ["127013003", "90781000119102", "157141000119108"]
DIABETIC_COMPLICATION_SYNTHEA = DIABETIC_KIDNEY_SYNTHEA + [
    "368581000119106", "60951000119105", "97331000119101", "1501000119109", "1551000119108"]
DIABETES_SCT = [("73211009", "Diabetes mellitus"), ("46635009", "Diabetes mellitus type 1"),
                ("44054006", "Diabetes mellitus type 2"), ("11687002", "Gestational diabetes mellitus")]

NEUROPATHY_SCT = [("302226006", "Peripheral nerve disease"),
                  ("368581000119106", "Neuropathy due to type 2 diabetes mellitus"),
                  ("713706002", "Polyneuropathy due to type 2 diabetes mellitus"),
                  ("713705003", "Polyneuropathy due to type 1 diabetes mellitus"),
                  ("230572002", "Neuropathy due to diabetes mellitus")]

PAD_SCT = [("399957001", "Peripheral arterial occlusive disease"), ("63491006", "Intermittent claudication"),
           ("51274000", "Atherosclerosis of arteries of the extremities"),
           ("400047006", "Peripheral vascular disease")]

MUSCLE_SCT = [("240101000", "Drug-induced myopathy"), ("16462851000119106", "Myalgia caused by statin")]

# ---------------------------------------------------------------------------


def build_valuesets(src):
    V = []

    def vs(*a):
        v = ValueSet(*a)
        V.append(v)
        return v

    # -- §1 leg cramps --------------------------------------------------------
    s1 = rules(1, "%s; %s" % (S_CARENOTES, S_BMJ))
    vs("leg-cramps", "leg-cramps", "Leg cramps",
       "Conditions documenting leg or muscle cramps. Gates the whole service "
       "(clinical-rules.md \u00a71): cards about cramps are returned only when the record "
       "documents one of these codes (or a code whose text says 'cramp').") \
        .concepts(ICD10CM, s1, LEG_CRAMPS_ICD).concepts(SNOMED, s1, LEG_CRAMPS_SCT)

    s2 = rules(2, "%s; %s" % (S_BMJ, S_DXPAD))

    # -- pregnancy (r2: an episode with a start and an end) --------------------
    v = vs("pregnancy-condition", "pregnancy", "Pregnancy conditions",
           "Conditions that are evidence of an ongoing pregnancy: risk factor 'pregnancy' "
           "(clinical-rules.md \u00a72 r2) and the pregnancy branch of the DVT rule-out (\u00a76). "
           "ICD-10-CM Z33.1, Z34, Z3A, O09-O48, and the O24, O98, O99, O9A codes whose last "
           "character says pregnancy (not childbirth or the puerperium); SNOMED CT from the VSAC "
           "Pregnancy and Pregnant State value sets. O00-O08, O60-O77, O80-O92 and O94 are never "
           "evidence of an ongoing pregnancy.")
    # Categories with no childbirth or puerperium subcodes: every code counts.
    v.isa(ICD10CM, s2, ["O09", "O20", "O21", "O22", "O23", "O28", "O29"]
          + ["O%02d" % i for i in range(30, 49)] + ["Z34", "Z3A"])
    v.concepts(ICD10CM, s2, [("Z33.1", "Pregnant state, incidental")])
    v.concepts(SNOMED, s2, PREGNANCY_SCT)
    # Mixed categories (O10-O16, O24-O26, O98-O9A): only the codes of the VSAC
    # Pregnancy set, which holds their pregnancy subcodes, not those saying
    # childbirth or the puerperium.
    ongoing = re.compile(r"^(O09|O1[0-6]|O2[0-9]|O3[0-9]|O4[0-8]|O98|O99|O9A|Z33\.1|Z34|Z3A)")
    not_ongoing = re.compile(r"childbirth|puerper|postpartum", re.I)
    v.from_rows(rows_of(src, "Pregnancy",
                        keep=lambda s_, c, d: s_ != ICD10CM or (bool(ongoing.match(c)) and not not_ongoing.search(d)),
                        why="not evidence of an ongoing pregnancy (O60-O92 labour, delivery and puerperium; "
                            "Z32 tests; childbirth or puerperium subcodes)"),
                vsac(src, "Pregnancy"))
    v.from_rows(rows_of(src, "Pregnant_State"), vsac(src, "Pregnant_State"))

    v = vs("pregnancy-outcome", "pregnancy", "Pregnancy outcomes",
           "An outcome that ends a pregnancy episode (clinical-rules.md \u00a72 r2): abortive "
           "outcomes (ectopic and molar pregnancy, miscarriage, termination) O00-O08, delivery "
           "O80, O82, outcome of delivery Z37, termination Z33.2, and the SNOMED CT delivery, "
           "miscarriage and termination codes of the Synthea pregnancy module, as Condition or "
           "Procedure.")
    v.isa(ICD10CM, s2, ["O%02d" % i for i in range(0, 9)] + ["Z37"])
    v.concepts(ICD10CM, s2, DELIVERY_ICD + [("Z33.2", "Encounter for elective termination of pregnancy")])
    v.concepts(SNOMED, s2, DELIVERY_SCT)
    v.from_rows(src.synthea_rows(SNOMED, PREGNANCY_OUTCOME_SYNTHEA), synthea_cite)

    v = vs("postpartum-delivery", "postpartum", "Deliveries",
           "A delivery; within the last 42 days it makes the patient postpartum, for the DVT "
           "rule-out only (clinical-rules.md \u00a72 r2, \u00a76).")
    v.isa(ICD10CM, s2, ["Z37"])
    v.concepts(ICD10CM, s2, DELIVERY_ICD)
    v.concepts(SNOMED, s2, DELIVERY_SCT)
    vs("postpartum-encounter", "postpartum", "Postpartum care encounters",
       "An encounter for postpartum care (ICD-10-CM Z39) within the last 42 days makes the patient "
       "postpartum, for the DVT rule-out only (clinical-rules.md \u00a72 r2).") \
        .isa(ICD10CM, s2, ["Z39"])

    vs("pregnancy-status-observation", "pregnancy", "Pregnancy status observations",
       "Observation codes for a recorded pregnancy status; the newest one within 280 days "
       "decides (clinical-rules.md \u00a72, pregnancy).") \
        .concepts(LOINC, s2, [("82810-3", "Pregnancy status"), ("11449-6", "Pregnancy status - Reported")])
    vs("pregnancy-status-pregnant", "pregnancy", "Pregnancy status: pregnant",
       "Observation values meaning 'pregnant' (clinical-rules.md \u00a72, pregnancy).") \
        .concepts(LOINC, s2, [("LA15173-0", "Pregnant")]) \
        .concepts(SNOMED, s2, [("77386006", "Pregnancy")])
    vs("pregnancy-status-not-pregnant", "pregnancy", "Pregnancy status: not pregnant",
       "Observation values meaning 'not pregnant'; a newer one overrides an older "
       "pregnant status (clinical-rules.md \u00a72, pregnancy).") \
        .concepts(LOINC, s2, [("LA26683-5", "Not pregnant")]) \
        .concepts(SNOMED, s2, [("60001007", "Not pregnant")])

    # -- dialysis -------------------------------------------------------------
    v = vs("dialysis-procedure", "dialysis", "Dialysis procedures",
           "Dialysis procedures; one performed in the last 90 days gives the risk factor "
           "'dialysis' (clinical-rules.md \u00a72). SNOMED CT procedures, CPT 90935-90999 and the "
           "VSAC Dialysis Services, Hemodialysis and Peritoneal Dialysis value sets.")
    v.concepts(SNOMED, s2, DIALYSIS_PROC_SCT)
    v.concepts(CPT, s2, [(str(c), "Dialysis service (CPT 90935-90999 range)")
                         for c in range(DIALYSIS_CPT_RANGE[0], DIALYSIS_CPT_RANGE[1] + 1)])

    def dialysis_keep(system, code, display):
        if system == CPT:
            return DIALYSIS_CPT_RANGE[0] <= int(code) <= DIALYSIS_CPT_RANGE[1]
        if system == SNOMED:
            # removing a dialysis catheter documents the end of dialysis, not dialysis
            return not display.lower().startswith("removal of")
        return True

    hcpcs_display = {"G0257": "Unscheduled or emergency dialysis for ESRD, hospital outpatient",
                     "S9339": "Home peritoneal dialysis therapy, per diem"}
    for stem in ("Dialysis_Services", "Hemodialysis", "Peritoneal_Dialysis"):
        rows = rows_of(src, stem, keep=dialysis_keep,
                       why="CPT outside 90935-90999, or removal of a dialysis catheter")
        # CPT/HCPCS descriptors: our own words, not the AMA/CMS text
        fixed = []
        for r in rows:
            if r[0] == CPT:
                r = (r[0], r[1], "Dialysis service (CPT 90935-90999 range)", r[3])
            elif r[0] == HCPCS:
                r = (r[0], r[1], hcpcs_display.get(r[1], "Dialysis service (HCPCS)"), r[3])
            fixed.append(r)
        v.from_rows(fixed, vsac(src, stem))

    v = vs("dialysis-condition", "dialysis", "Dialysis dependence",
           "Conditions documenting that the patient is on dialysis: risk factor 'dialysis' "
           "(clinical-rules.md \u00a72).")
    v.concepts(ICD10CM, s2, [("Z99.2", "Dependence on renal dialysis"),
                             ("Z91.15", "Patient's noncompliance with renal dialysis")])
    v.concepts(SNOMED, s2, DIALYSIS_COND_SCT)
    v.from_rows(src.synthea_rows(SNOMED, ["129721000119106"]), synthea_cite)

    vs("dialysis-encounter", "dialysis", "Dialysis encounters",
       "Encounter types or reasons that say the visit was for dialysis (ICD-10-CM Z49); an "
       "Encounter in the last 90 days with one of these, or with a dialysis procedure code, gives "
       "the risk factor 'dialysis' (clinical-rules.md \u00a72 r2).") \
        .isa(ICD10CM, s2, ["Z49"])

    # -- kidney disease -------------------------------------------------------
    v = vs("kidney-disease", "kidney-disease", "Chronic kidney disease and ESRD",
           "Chronic kidney disease (any stage) and end-stage renal disease: risk factor "
           "'kidney-disease' (clinical-rules.md \u00a72). Acute kidney failure is not included.")
    v.isa(ICD10CM, s2, ["N18", "I12", "I13"]
          + ["%s.%s" % (e, sub) for e in DIABETES_ICD for sub in ("21", "22", "29")])
    v.concepts(SNOMED, s2, KIDNEY_SCT)
    # r2: diabetic kidney disease, and the microalbuminuria and proteinuria
    # Synthea records for it.
    v.from_rows(src.synthea_rows(SNOMED, DIABETIC_KIDNEY_SYNTHEA), synthea_cite)
    v.from_rows(rows_of(src, "Chronic_Kidney_Disease_Stage_5", systems={SNOMED}),
                vsac(src, "Chronic_Kidney_Disease_Stage_5"))
    v.from_rows(rows_of(src, "End_Stage_Renal_Disease", systems={SNOMED}),
                vsac(src, "End_Stage_Renal_Disease"))

    def chronic_kidney(system, code, display):
        d = display.lower()
        return ("chronic" in d or "end stage" in d or "end-stage" in d) and "acute" not in d

    v.from_rows(rows_of(src, "Kidney_Failure", systems={SNOMED}, keep=chronic_kidney,
                        why="acute kidney failure is not chronic kidney disease"),
                vsac(src, "Kidney_Failure"))

    # -- diabetes -------------------------------------------------------------
    v = vs("diabetes", "diabetes", "Diabetes mellitus",
           "Diabetes mellitus of any type, including diabetes in pregnancy; not prediabetes: "
           "risk factor 'diabetes' (clinical-rules.md \u00a72).")
    v.isa(ICD10CM, s2, DIABETES_ICD + ["O24"])
    v.concepts(SNOMED, s2, DIABETES_SCT)
    # r2: a diabetic complication implies the diabetes (Synthea records the
    # complications, not always the diabetes itself).
    v.from_rows(src.synthea_rows(SNOMED, DIABETIC_COMPLICATION_SYNTHEA), synthea_cite)
    not_diabetes = re.compile(r"prediabet|pre-diabet|impaired|at risk|history of|screening", re.I)
    diabetes_prefix = re.compile(r"^(E08|E09|E10|E11|E13|O24)")

    def diabetes_keep(system, code, display):
        if not_diabetes.search(display):
            return False
        if system == ICD10CM and not diabetes_prefix.match(code):
            return False  # e.g. Z79.4 long-term insulin use: a medication fact, not a diagnosis
        return True

    for stem in ("Diabetes", "Type_1_Diabetes", "Gestational_Diabetes", "Preexisting_Diabetes"):
        v.from_rows(rows_of(src, stem, keep=diabetes_keep,
                            why="not a diabetes diagnosis (prediabetes/impaired/at risk/history/"
                                "screening, or an ICD-10-CM code outside E08-E13/O24)"),
                    vsac(src, stem))
    v.from_rows(src.synthea_rows(SNOMED, ["427089005"]), synthea_cite)

    # -- neuropathy -----------------------------------------------------------
    v = vs("neuropathy", "neuropathy", "Neuropathy",
           "Nerve damage or disease (polyneuropathy, mononeuropathy of the lower limb, "
           "diabetic neuropathy, radiculopathy, motor neurone disease): risk factor "
           "'neuropathy' (clinical-rules.md \u00a72).")
    v.isa(ICD10CM, s2, ["G60", "G61", "G62", "G63", "G64", "G57", "G58", "G59",
                        "E08.4", "E09.4", "E10.4", "E11.4", "E13.4", "M54.1"])
    v.concepts(ICD10CM, s2, [("G12.21", "Amyotrophic lateral sclerosis")])
    v.concepts(SNOMED, s2, NEUROPATHY_SCT)
    v.from_rows(rows_of(src, "Peripheral_Neuropathy"), vsac(src, "Peripheral_Neuropathy"))
    neuro_re = re.compile(r"neuropath|disorder of nerve|nervous system|nerve palsy", re.I)
    for stem in ("Diabetes", "Type_1_Diabetes"):
        v.from_rows(rows_of(src, stem, systems={SNOMED},
                            keep=lambda s, c, d: bool(neuro_re.search(d))),
                    lambda ids, stem=stem: src.cite(stem, ids) + " (diabetic neuropathy codes only)")

    # -- peripheral artery disease -------------------------------------------
    v = vs("peripheral-artery-disease", "peripheral-artery-disease", "Peripheral artery disease",
           "Atherosclerosis or occlusive disease of the limb (peripheral) arteries: risk factor "
           "'peripheral-artery-disease' (clinical-rules.md \u00a72). Coronary, cerebral, "
           "carotid, renal and aortic-only codes of the VSAC set are left out.")
    v.isa(ICD10CM, s2, ["I70.2", "I70.3", "I70.4", "I70.5", "I70.6", "I70.7"]
          + ["%s.%s" % (e, sub) for e in DIABETES_ICD for sub in ("51", "52")])
    v.concepts(ICD10CM, s2, [("I73.9", "Peripheral vascular disease, unspecified")])
    v.concepts(SNOMED, s2, PAD_SCT)
    pad_in = re.compile(r"peripheral|extremit|limb|claudication|foot|\btoe\b|aortoiliac|ischemic ulcer", re.I)
    pad_out = re.compile(r"coronary|carotid|cerebral|renal|heart|vertebral|basilar|precerebral|aorta\b", re.I)
    v.from_rows(rows_of(src, "Atherosclerosis_and_Peripheral_Arterial_Disease",
                        keep=lambda s, c, d: (bool(pad_in.search(d)) and not pad_out.search(d))
                        or (s == ICD10CM and v.covered(s, c)),
                        why="not limb/peripheral arterial disease (coronary, cerebral, carotid, "
                            "renal, aortic-only or unspecified site)"),
                vsac(src, "Atherosclerosis_and_Peripheral_Arterial_Disease"))

    # -- varicose veins, muscle disease ----------------------------------------
    vs("varicose-veins", "varicose-veins", "Varicose veins",
       "Varicose veins of the lower limbs and chronic venous insufficiency: risk factor "
       "'varicose-veins' (clinical-rules.md \u00a72).") \
        .isa(ICD10CM, s2, ["I83", "O22.0"]) \
        .concepts(ICD10CM, s2, [("I87.2", "Venous insufficiency (chronic) (peripheral)")]) \
        .concepts(SNOMED, s2, [("72866009", "Varicose veins of lower limb")])

    vs("muscle-disease", "muscle-disease", "Muscle disease",
       "Primary muscle disorders, myopathies, myositis and rhabdomyolysis: risk factor "
       "'muscle-disease' (clinical-rules.md \u00a72).") \
        .isa(ICD10CM, s2, ["G71", "G72", "M60"]) \
        .concepts(ICD10CM, s2, [("M62.82", "Rhabdomyolysis")]) \
        .concepts(SNOMED, s2, MUSCLE_SCT)

    # -- electrolytes -----------------------------------------------------------
    for vsid, finding, title, icd, icd_disp, sct, sct_disp in [
            ("hypokalemia-condition", "hypokalemia", "Hypokalaemia", "E87.6", "Hypokalemia", "43339004", "Hypokalemia"),
            ("hyponatremia-condition", "hyponatremia", "Hyponatraemia", "E87.1",
             "Hypo-osmolality and hyponatremia", "89627008", "Hyponatremia"),
            ("hypocalcemia-condition", "hypocalcemia", "Hypocalcaemia", "E83.51", "Hypocalcemia", "5291005", "Hypocalcemia"),
            ("hypomagnesemia-condition", "hypomagnesemia", "Hypomagnesaemia", "E83.42", "Hypomagnesemia",
             "190855004", "Hypomagnesemia")]:
        vs(vsid, finding, title + " (condition)",
           "Conditions documenting %s: risk factor '%s' (clinical-rules.md \u00a72)." % (title.lower(), finding)) \
            .concepts(ICD10CM, s2, [(icd, icd_disp)]).concepts(SNOMED, s2, [(sct, sct_disp)])

    for vsid, finding, title, codes in [
            ("potassium-lab", "hypokalemia", "Potassium lab results",
             [("2823-3", "Potassium [Moles/volume] in Serum or Plasma"), ("6298-4", "Potassium [Moles/volume] in Blood")]),
            ("sodium-lab", "hyponatremia", "Sodium lab results",
             [("2951-2", "Sodium [Moles/volume] in Serum or Plasma"), ("2947-0", "Sodium [Moles/volume] in Blood")]),
            ("calcium-total-lab", "hypocalcemia", "Total calcium lab results",
             [("17861-6", "Calcium [Mass/volume] in Serum or Plasma"), ("49765-1", "Calcium [Mass/volume] in Blood"),
              ("2000-8", "Calcium [Moles/volume] in Serum or Plasma")]),
            ("calcium-ionized-lab", "hypocalcemia", "Ionized calcium lab results",
             [("1994-3", "Calcium.ionized [Moles/volume] in Blood"),
              ("1995-0", "Calcium.ionized [Moles/volume] in Serum or Plasma")]),
            ("magnesium-lab", "hypomagnesemia", "Magnesium lab results",
             [("19123-9", "Magnesium [Mass/volume] in Serum or Plasma"),
              ("2601-3", "Magnesium [Moles/volume] in Serum or Plasma"),
              ("21377-7", "Magnesium [Mass/volume] in Blood")])]:
        vs(vsid, finding, title,
           "Laboratory observation codes; the newest result within 90 days below range gives "
           "the finding '%s' (clinical-rules.md \u00a72; limits in labs.json)." % finding) \
            .concepts(LOINC, s2, codes)

    vs("albumin-lab", "hypocalcemia", "Albumin lab results",
       "Serum or plasma albumin; a result within 7 days of a total calcium adjusts it for albumin "
       "before it is compared with the limit (clinical-rules.md \u00a72 r2, a service decision).") \
        .concepts(LOINC, s2, [("1751-7", "Albumin [Mass/volume] in Serum or Plasma"),
                              ("61151-7", "Albumin [Mass/volume] in Serum or Plasma by Bromocresol green (BCG) dye binding method"),
                              ("2862-1", "Albumin [Mass/volume] in Serum or Plasma by Electrophoresis")])

    # -- dehydration, cirrhosis, hypothyroidism --------------------------------
    vs("dehydration", "dehydration", "Dehydration",
       "Volume depletion and dehydration: risk factor 'dehydration' (clinical-rules.md \u00a72).") \
        .isa(ICD10CM, s2, ["E86"]).concepts(SNOMED, s2, [("34095006", "Dehydration")])

    s2a = rules(2, S_ALLEN)
    v = vs("cirrhosis", "cirrhosis", "Cirrhosis of the liver",
           "Cirrhosis of the liver of any cause: risk factor 'cirrhosis' (clinical-rules.md \u00a72, "
           "Allen & Kirby 2012). Fibrosis without cirrhosis is not included.")
    v.isa(ICD10CM, s2a, ["K74.6", "K70.3"])
    v.concepts(SNOMED, s2a, [("19943007", "Cirrhosis of liver")])
    cirr = lambda s, c, d: "cirrho" in d.lower() and "chronic liver disease" not in d.lower()
    for stem in ("Chronic_Liver_Disease", "Liver_Disease"):
        v.from_rows(rows_of(src, stem, keep=cirr), lambda ids, stem=stem: src.cite(stem, ids) + " (cirrhosis codes only)")

    vs("hypothyroidism", "hypothyroidism", "Hypothyroidism",
       "Hypothyroidism: risk factor 'hypothyroidism' (clinical-rules.md \u00a72, Allen & Kirby 2012).") \
        .isa(ICD10CM, s2a, ["E03"]) \
        .concepts(ICD10CM, s2a, [("E02", "Subclinical iodine-deficiency hypothyroidism"),
                                 ("E89.0", "Postprocedural hypothyroidism")]) \
        .concepts(SNOMED, s2a, [("40930008", "Hypothyroidism"), ("83664006", "Idiopathic atrophic hypothyroidism")])

    # -- §6 DVT ------------------------------------------------------------------
    s6 = rules(6, S_WELLS)
    # r2: R60.0 (localised oedema, site unknown) no longer fires the prompt;
    # R22.43 (both legs) is kept so the rule can see that both legs are swollen.
    vs("leg-swelling", "leg-swelling", "Leg swelling",
       "Swelling or oedema of the leg, one half of the DVT prompt (clinical-rules.md \u00a76). "
       "R22.4 has children R22.40-R22.43; R22.43 (both legs) is in the set so that the rule "
       "can tell swelling of both legs, which does not fire the prompt.") \
        .isa(ICD10CM, s6, ["R22.4"]) \
        .concepts(SNOMED, s6, [("449614009", "Leg swelling"), ("449615005", "Leg swelling"),
                               ("102572006", "Edema of lower extremity")])
    vs("leg-pain", "leg-pain", "Leg pain",
       "Pain in the leg, the other half of the DVT prompt (clinical-rules.md \u00a76). "
       "M79.60* also holds arm pain (M79.601-M79.603) and unspecified limb (M79.609), so only its leg codes are listed.") \
        .isa(ICD10CM, s6, ["M79.65", "M79.66"]) \
        .concepts(ICD10CM, s6, [("M79.604", "Pain in right leg"), ("M79.605", "Pain in left leg"),
                                ("M79.606", "Pain in leg, unspecified")]) \
        .concepts(SNOMED, s6, [("10601006", "Pain in lower limb"), ("78514002", "Leg pain")])

    dvt_sct = [("128053003", "Deep venous thrombosis"), ("404223003", "Deep venous thrombosis of lower extremity"),
               ("132281000119108", "Acute deep venous thrombosis")]
    vs("active-dvt", "active-dvt", "Acute deep vein thrombosis of the leg",
       "Acute DVT of the lower limb, including DVT in pregnancy and the puerperium. One that is "
       "not refuted or abated and dated within 183 days answers the DVT question for its leg "
       "(or for an unstated side): the rule-out card is not shown (clinical-rules.md \u00a76, r2).") \
        .isa(ICD10CM, s6, ["I82.4", "O22.3", "O88.2"]) \
        .concepts(ICD10CM, s6, [("O87.1", "Deep phlebothrombosis in the puerperium")]) \
        .concepts(SNOMED, s6, dvt_sct)

    v = vs("previous-vte", "previous-dvt", "Venous thromboembolism (any time)",
           "Any venous thromboembolism, chronic (I82.5) or resolved included, or a personal "
           "history of it: Wells item 'previously documented DVT' (+1) (clinical-rules.md \u00a76). "
           "An acute DVT dated within 183 days and still active is not 'previous' (see active-dvt).")
    v.isa(ICD10CM, s6, ["I82.4", "I82.5", "I26", "O22.3", "O88.2"])
    v.concepts(ICD10CM, s6, [("Z86.718", "Personal history of other venous thrombosis and embolism"),
                             ("O87.1", "Deep phlebothrombosis in the puerperium")])
    v.concepts(SNOMED, s6, dvt_sct)
    v.from_rows(rows_of(src, "Venous_Thromboembolism"), vsac(src, "Venous_Thromboembolism"))
    vte_re = re.compile(r"thromb|phlegmasia|blood-clot embolism|pulmonary embol", re.I)
    for stem in ("Venous_Thromboembolism_in_Pregnancy", "Obstetrics_VTE"):
        v.from_rows(rows_of(src, stem, keep=lambda s, c, d: bool(vte_re.search(d)) and "soap" not in d.lower(),
                            why="not venous thromboembolism (unspecified/other venous complications, "
                                "embolism of unstated kind, soap embolism)"),
                    lambda ids, stem=stem: src.cite(stem, ids) + " (thromboembolism codes only)")
    v.from_rows(src.synthea_rows(SNOMED, ["706870000"]), synthea_cite)

    # r2: the work-up already under way or done.
    vs("venous-duplex", "venous-duplex", "Venous duplex of the leg",
       "Duplex scan of the leg veins (CPT 93970 both legs, 93971 one leg or limited), as a "
       "Procedure, DiagnosticReport, ImagingStudy or ServiceRequest: done or ordered since the "
       "swelling began, the DVT rule-out card is not shown (clinical-rules.md \u00a76, r2). "
       "Displays are our own words.") \
        .concepts(CPT, s6, [("93970", "Duplex scan of the leg veins, both sides"),
                            ("93971", "Duplex scan of the leg veins, one side or limited")])
    d_dimer = [("48065-7", "Fibrin D-dimer FEU [Mass/volume] in Platelet poor plasma"),
               ("48066-5", "Fibrin D-dimer DDU [Mass/volume] in Platelet poor plasma")]
    vs("d-dimer-lab", "d-dimer-positive", "D-dimer",
       "D-dimer results: a negative one since the swelling began answers the DVT question; a "
       "positive or unreadable one is shown and makes the ultrasound the recommended test "
       "(clinical-rules.md \u00a76, r2). 48065-7 is reported in FEU, 48066-5 in DDU.") \
        .concepts(LOINC, s6, d_dimer) \
        .from_rows(src.synthea_rows(LOINC, [c for c, _ in d_dimer]), synthea_cite)

    # active cancer
    v = vs("active-cancer", "active-cancer", "Malignant neoplasm",
           "Malignant neoplasms: Wells item 'active cancer' (+1) when active "
           "(clinical-rules.md \u00a76). ICD-10-CM C00-C96 (including C4A, C7A, C7B) and the "
           "VSAC Cancer and Malignant Neoplasms value sets, without neoplasms of uncertain "
           "behaviour, in-situ neoplasms and neurofibromatosis.")
    # r2: C44 (other skin cancer: basal-cell and squamous-cell carcinoma of the skin) is not
    # active cancer for Wells.
    cats = ["C%02d" % i for i in list(range(0, 27)) + list(range(30, 35)) + list(range(37, 42))
            + [43] + list(range(45, 59)) + list(range(60, 87)) + [88] + list(range(90, 97))]
    cats += ["C4A", "C7A", "C7B"]
    v.isa(ICD10CM, s6, cats)
    not_malignant = re.compile(r"uncertain|unknown behavio|in situ|neurofibromatosis|"
                               r"morphologic abnormality|schwannomatosis|basal cell carcinoma|"
                               r"squamous cell carcinoma of (the )?skin|squamous cell carcinoma of .*\bskin\b", re.I)

    def cancer_keep(system, code, display):
        if not_malignant.search(display):
            return False
        if system == ICD10CM:
            return v.covered(system, code)  # only C codes; D37-D49, Q85 are not malignant
        return True

    for stem in ("Cancer", "Malignant_Neoplasms"):
        v.from_rows(rows_of(src, stem, keep=cancer_keep,
                            why="not malignant (uncertain/unspecified behaviour, in situ, "
                                "neurofibromatosis, morphology) or skin basal-cell/squamous-cell carcinoma (r2)"),
                    vsac(src, stem))
    cancer_codes = set(c for inc in v.includes for c, _ in inc.get("concepts", []))
    synth_cancer = [r for r in src.synthea if r[0] == SNOMED and r[1] not in cancer_codes
                    and re.search(r"malignant|carcinoma|leukemia|lymphoma|cancer", r[2], re.I)
                    and r[2].endswith("(disorder)") and not not_malignant.search(r[2])
                    and "suspected" not in r[2].lower()]
    if synth_cancer:
        v.from_rows(synth_cancer, synthea_cite)
        log("active-cancer: added %d malignant Synthea code(s) missing from the VSAC sets: %s" % (
            len(synth_cancer), "; ".join("%s %s" % (r[1], r[2]) for r in synth_cancer)))

    v = vs("cancer-treatment", "active-cancer", "Cancer treatment or palliative care",
           "Chemotherapy, radiotherapy or palliative care: within 183 days it counts as active "
           "cancer for Wells (clinical-rules.md \u00a76, r2), as a Condition or a Procedure.")
    v.concepts(ICD10CM, s6, [("Z51.11", "Encounter for antineoplastic chemotherapy"),
                             ("Z51.12", "Encounter for antineoplastic immunotherapy"),
                             ("Z51.0", "Encounter for antineoplastic radiation therapy"),
                             ("Z51.5", "Encounter for palliative care")])
    v.concepts(SNOMED, s6, [("367336001", "Chemotherapy"), ("108290001", "Radiation oncology AND/OR radiotherapy"),
                            ("103735009", "Palliative care")])
    v.from_rows(src.synthea_rows(SNOMED, ["367336001", "394894008", "703423002"]), synthea_cite)
    # Billing codes for giving chemotherapy (CPT 96401-96549) or the drugs (HCPCS
    # J9000-J9999) count only alongside a malignant neoplasm Condition. Displays: our words.
    vs("chemotherapy-billing", "active-cancer", "Chemotherapy administration or drug (billing codes)",
       "CPT 96401-96549 and HCPCS J9000-J9999, enumerated: chemotherapy given or supplied. They "
       "count as cancer treatment within 183 days only alongside a malignant neoplasm Condition "
       "(clinical-rules.md \u00a76, r2).") \
        .concepts(CPT, s6, [(str(c), "Chemotherapy administration (CPT 96401-96549 range)")
                            for c in range(96401, 96550)]) \
        .concepts(HCPCS, s6, [("J%04d" % c, "Chemotherapy drug (HCPCS J9000-J9999 range)")
                              for c in range(9000, 10000)])

    vs("paralysis", "immobilization", "Paralysis",
       "Hemiplegia, paraplegia, tetraplegia and other paralytic syndromes: Wells item "
       "'paralysis, paresis or recent immobilisation' (+1) (clinical-rules.md \u00a76).") \
        .isa(ICD10CM, s6, ["G81", "G82", "G83"]) \
        .from_rows(src.synthea_rows(SNOMED, ["698754002"]), synthea_cite)

    vs("immobilization-procedure", "immobilization", "Cast or immobilisation",
       "Cast application or immobilisation procedures; one of a leg (its bodySite or its code's "
       "text must name the leg: a jaw or an arm does not count) within 28 days counts for the "
       "Wells immobilisation item (clinical-rules.md \u00a76, r2).") \
        .from_rows(src.synthea_rows(SNOMED, ["274474001"]), synthea_cite)

    v = vs("major-surgery-procedure", "recent-surgery", "Major surgery",
           "Major surgical procedures; one within 12 weeks gives the Wells item 'recently "
           "bedridden or major surgery' (+1) (clinical-rules.md \u00a76). Anaesthesia codes are "
           "not surgery and are not included.")
    for stem in ("General_Surgery", "Hip_Replacement_Surgery", "Knee_Replacement_Surgery"):
        v.from_rows(rows_of(src, stem), vsac(src, stem))

    v = vs("long-term-anticoagulant-condition", "anticoagulated", "Long-term anticoagulant use",
           "Condition documenting long-term anticoagulant use (clinical-rules.md \u00a76, "
           "finding 'anticoagulated').")
    v.concepts(ICD10CM, s6, [("Z79.01", "Long term (current) use of anticoagulants")])
    v.from_rows(rows_of(src, "Long_Term_Anticoagulant_Use"), vsac(src, "Long_Term_Anticoagulant_Use"))

    s6b = rules(6, S_BMJ)
    vs("bakers-cyst", "bakers-cyst", "Baker's cyst",
       "Popliteal (Baker's) cyst, an alternative cause of leg pain and swelling named on the "
       "DVT card (clinical-rules.md \u00a76).") \
        .isa(ICD10CM, s6b, ["M71.2"]) \
        .concepts(ICD10CM, s6b, [("M66.0", "Rupture of popliteal cyst")])

    leg_injury_sct = ["16114001", "359817006", "44465007", "125601008", "239720000", "444448004",
                      "444470001", "30832001", "283385000", "284551006"]
    vs("leg-injury", "leg-injury", "Leg injury",
       "Injuries of the hip, thigh, knee, lower leg, ankle and foot, an alternative cause of "
       "leg pain and swelling named on the DVT card (clinical-rules.md \u00a76).") \
        .isa(ICD10CM, s6, ["S%02d" % i for i in range(70, 100)]) \
        .from_rows(src.synthea_rows(SNOMED, leg_injury_sct), synthea_cite)

    return V


# ---------------------------------------------------------------------------
# Drug classes
# ---------------------------------------------------------------------------

# clinical-rules.md §3 table, ingredient names and RxNorm ingredient codes as
# written there (None = no code given; filled only from a knowledge-source file
# whose display is exactly that ingredient).
CLASSES = [
    # code, display, strength, note, sources, systemicOnly, ingredients, atc
    ("loop-diuretic", "Loop diuretic", "low",
     "Garrison 2012 adjusted sequence ratio 1.20 (not significant)", ["garrison-2012"], False,
     [("furosemide", "4603"), ("bumetanide", "1808"), ("torsemide", "38413"), ("ethacrynic acid", "4109")],
     # C03EB: loop diuretics combined with potassium-sparing agents.
     ["C03C", "C03EB"]),
    ("thiazide-diuretic", "Thiazide or thiazide-like diuretic", "moderate",
     "Garrison 2012 adjusted sequence ratio 1.48 (thiazide-like diuretics)", ["garrison-2012"], False,
     [("hydrochlorothiazide", "5487"), ("chlorthalidone", "2409"), ("indapamide", "5764"),
      ("metolazone", "6916"), ("chlorothiazide", "2396")],
     # r2 combination groups holding a thiazide or thiazide-like (C03B) diuretic; the
     # most specific ATC group listed decides, so each group names all its classes.
     # C07D (beta-blocker, thiazides and other diuretics) is from the WHO ATC index.
     ["C03A", "C03B", "C03EA", "C07B", "C07C", "C07D", "C09BA", "C09DA", "C09XA52"]),
    ("potassium-sparing-diuretic", "Potassium-sparing diuretic", "moderate",
     "Garrison 2012 adjusted sequence ratio 2.12", ["garrison-2012"], False,
     [("spironolactone", "9997"), ("eplerenone", "298869"), ("triamterene", "10763"), ("amiloride", "644")],
     ["C03D", "C03E", "C03EA", "C03EB"]),
    ("nifedipine", "Nifedipine", "reported",
     "Named as a drug that can cause leg cramps (BMJ Best Practice patient leaflet 2012)", ["bmj-bp-2012"], False,
     [("nifedipine", "7417")], ["C08CA05"]),
    # r2: long- and short-acting beta2-agonists are two classes. R03AC/R03CC and the
    # combination groups R03AK/R03AL hold both kinds: the single long-acting codes and
    # the long-acting combinations are listed by code (WHO ATC/DDD index), so that the
    # most specific group decides; a product is classed by its beta2-agonist.
    ("beta2-agonist", "Long-acting beta2-agonist", "moderate",
     "Garrison 2012 adjusted sequence ratio 2.42 (long-acting beta2-agonists)", ["garrison-2012"], False,
     [("salmeterol", "36117"), ("formoterol", "25255"), ("vilanterol", None), ("arformoterol", None),
      ("indacaterol", None), ("olodaterol", None), ("bambuterol", None)],
     ["R03AC12", "R03AC13", "R03AC18", "R03AC19", "R03CC12"]
     + ["R03AK%02d" % n for n in (6, 7, 8, 9, 10, 11, 12, 14)]
     + ["R03AL%02d" % n for n in range(3, 13)]),
    ("short-acting-beta2-agonist", "Short-acting beta2-agonist", "reported",
     "Beta-agonists named as a cause of leg cramps (BMJ Best Practice patient leaflet 2012); "
     "no measured ratio for short-acting ones", ["bmj-bp-2012"], False,
     [("albuterol", "435"), ("levalbuterol", "237159"), ("terbutaline", "10368")],
     ["R03AC", "R03CC", "R03AK03", "R03AK04", "R03AK05", "R03AK13", "R03AL01", "R03AL02"]),
    ("corticosteroid", "Systemic corticosteroid", "reported",
     "Systemic corticosteroids named as a cause of leg cramps (BMJ Best Practice patient leaflet 2012)",
     ["bmj-bp-2012"], True,
     [("prednisone", "8640"), ("prednisolone", "8638"), ("methylprednisolone", "6902"), ("dexamethasone", "3264"),
      ("hydrocortisone", "5492"), ("betamethasone", "1514"), ("triamcinolone", "10759"), ("cortisone", "2878"),
      ("fludrocortisone", "4452")],
     ["H02"]),
    ("morphine", "Morphine", "reported",
     "Named as a drug that can cause leg cramps (BMJ Best Practice patient leaflet 2012)", ["bmj-bp-2012"], False,
     [("morphine", "7052")], ["N02AA01", "N02AA51"]),
    ("cimetidine", "Cimetidine", "reported",
     "Named as a drug that can cause leg cramps (BMJ Best Practice patient leaflet 2012)", ["bmj-bp-2012"], False,
     [("cimetidine", "2541")], ["A02BA01"]),
    ("penicillamine", "Penicillamine", "reported",
     "Named as a drug that can cause leg cramps (BMJ Best Practice patient leaflet 2012)", ["bmj-bp-2012"], False,
     [("penicillamine", "7975")], ["M01CC01"]),
    ("statin", "Statin", "low", "Garrison 2012 adjusted sequence ratio 1.16", ["garrison-2012"], False,
     [("atorvastatin", "83367"), ("simvastatin", "36567"), ("rosuvastatin", "301542"), ("pravastatin", "42463"),
      ("lovastatin", "6472"), ("fluvastatin", "41127"), ("pitavastatin", "861634")],
     ["C10AA", "C10B"]),
    ("lithium", "Lithium", "reported",
     "Named as a drug that can cause leg cramps (BMJ Best Practice patient leaflet 2012)", ["bmj-bp-2012"], False,
     [("lithium", "6448"), ("lithium carbonate", "42351")], ["N05AN01"]),
    # r2: conflicting evidence, information only (listed last, never in the summary).
    ("beta-blocker", "Beta-blocker (systemic)", "conflicting",
     "listed as a cause by Diagnosis Pad; no association in Garrison 2012 (negative control)",
     ["diagnosis-pad-2025", "garrison-2012"], True,
     [("acebutolol", "149"), ("atenolol", "1202"), ("betaxolol", "1520"), ("bisoprolol", "19484"),
      ("carvedilol", "20352"), ("labetalol", "6185"), ("metoprolol", "6918"), ("nadolol", "7226"),
      ("nebivolol", "31555"), ("pindolol", "8332"), ("propranolol", "8787"), ("sotalol", "9947"),
      ("timolol", "10600")],
     ["C07", "C07B", "C07C", "C07D"]),
    # r2: intravenous iron (B03AC); each product is shown by its own name.
    ("iron-sucrose", "Intravenous iron", "reported",
     "Allen & Kirby 2012: reported with intravenous iron sucrose; overall incidence very low",
     ["allen-kirby-2012"], False,
     [("iron sucrose", None), ("ferric carboxymaltose", None), ("ferumoxytol", None), ("iron dextran", None),
      ("sodium ferric gluconate", None), ("ferric gluconate", None), ("ferric derisomaltose", None),
      ("iron isomaltoside", None)],
     ["B03AC"]),
    ("conjugated-estrogens", "Conjugated estrogens", "reported",
     "Allen & Kirby 2012: reported; overall incidence very low", ["allen-kirby-2012"], False,
     # G03CC07 (conjugated estrogens and bazedoxifene): WHO ATC index.
     [("conjugated estrogens", "4099"), ("estrogens, conjugated", None)], ["G03CA57", "G03CC07"]),
    ("raloxifene", "Raloxifene", "reported",
     "Allen & Kirby 2012: reported; overall incidence very low", ["allen-kirby-2012"], False,
     [("raloxifene", "72143")], ["G03XC01"]),
    ("naproxen", "Naproxen", "reported",
     "Allen & Kirby 2012: reported; overall incidence very low", ["allen-kirby-2012"], False,
     [("naproxen", "7258")], ["M01AE02", "M01AE52"]),
    ("teriparatide", "Teriparatide", "reported",
     "Allen & Kirby 2012: reported; overall incidence very low", ["allen-kirby-2012"], False,
     [("teriparatide", None)], ["H05AA02"]),
]

# §4 quinine and §6 anticoagulants (category other than "medication").
QUININE = ("quinine", "Quinine", "n/a",
           "FDA 2010: quinine (Qualaquin) must not be used for night-time leg cramps; serious "
           "haematologic reactions (thrombocytopenia, HUS/TTP)", ["fda-2010-quinine"], False,
           [("quinine", "9071")], ["P01BC01", "M09AA"])
ANTICOAG = ("anticoagulated", "Anticoagulant", "n/a",
            "Patient already anticoagulated (warfarin, heparins, fondaparinux, direct oral "
            "anticoagulants); reported on the DVT rule-out card", ["wells-2003"], False,
            [("warfarin", None), ("heparin", None), ("enoxaparin", None), ("dalteparin", None),
             ("fondaparinux", None), ("apixaban", None), ("rivaroxaban", None), ("edoxaban", None),
             ("dabigatran", None), ("dabigatran etexilate", None),
             # ATC B01AE (direct thrombin inhibitors, named by clinical-rules.md §6); their
             # products are in the VSAC Anticoagulant Therapy / Direct Thrombin Inhibitor sets
             ("argatroban", None), ("bivalirudin", None)],
            ["B01AA", "B01AB", "B01AE", "B01AF", "B01AX05"])

# Well-known US brand names (single-ingredient and combination products) for
# whole-word text matching.  Editorial list; none is a common English word.
# Bracketed brand names found in the product displays are added automatically.
BRANDS = {
    "loop-diuretic": ["Lasix", "Bumex", "Demadex", "Soaanz", "Edecrin", "Furoscix"],
    "thiazide-diuretic": ["Microzide", "Hygroton", "Thalitone", "Lozol", "Zaroxolyn", "Diuril",
                          "Dyazide", "Maxzide", "Aldactazide", "Moduretic", "Hyzaar", "Zestoretic",
                          "Vaseretic", "Diovan HCT", "Benicar HCT", "Micardis HCT", "Avalide",
                          "Tenoretic", "Ziac", "Edarbyclor", "Tribenzor", "Exforge HCT", "Accuretic",
                          "Lopressor HCT"],
    "potassium-sparing-diuretic": ["Aldactone", "CaroSpir", "Inspra", "Dyrenium", "Midamor", "Dyazide",
                                   "Maxzide", "Aldactazide", "Moduretic"],
    "nifedipine": ["Procardia", "Adalat", "Afeditab"],
    "beta2-agonist": ["Serevent", "Foradil", "Perforomist", "Brovana", "Striverdi", "Arcapta", "Advair",
                      "Wixela", "AirDuo", "Breo", "Symbicort", "Breyna", "Dulera", "Anoro", "Stiolto", "Trelegy",
                      "Bevespi", "Breztri"],
    "short-acting-beta2-agonist": ["ProAir", "Ventolin", "Proventil", "Xopenex", "Combivent", "DuoNeb",
                                   "Airsupra"],
    "corticosteroid": ["Rayos", "Medrol", "Solu-Medrol", "Depo-Medrol", "Decadron", "Hemady", "Cortef",
                       "Solu-Cortef", "Alkindi", "Celestone", "Orapred", "Millipred", "Pediapred",
                       "Veripred", "Florinef"],
    "morphine": ["MS Contin", "Kadian", "Avinza", "Embeda", "MorphaBond", "Arymo", "Duramorph",
                 "Infumorph", "Mitigo"],
    "cimetidine": ["Tagamet"],
    "penicillamine": ["Cuprimine", "Depen"],
    "statin": ["Lipitor", "Zocor", "Crestor", "Pravachol", "Mevacor", "Altoprev", "Lescol", "Livalo",
               "Zypitamag", "Vytorin", "Caduet", "Ezallor", "Roszet", "Flolipid"],
    "lithium": ["Lithobid", "Eskalith"],
    "beta-blocker": ["Sectral", "Tenormin", "Kerlone", "Zebeta", "Coreg", "Trandate", "Lopressor", "Toprol",
                     "Corgard", "Bystolic", "Inderal", "InnoPran", "Hemangeol", "Betapace", "Sorine",
                     "Sotylize", "Ziac", "Tenoretic", "Lopressor HCT", "Dutoprol", "Corzide", "Kapspargo"],
    "iron-sucrose": ["Venofer", "Injectafer", "Feraheme", "INFeD", "Ferrlecit", "Monoferric"],
    "conjugated-estrogens": ["Premarin", "Prempro", "Premphase", "Duavee"],
    "raloxifene": ["Evista"],
    "naproxen": ["Naprosyn", "EC-Naprosyn", "Anaprox", "Aleve", "Naprelan", "Vimovo", "Treximet"],
    "teriparatide": ["Forteo", "Bonsity"],
    "quinine": ["Qualaquin"],
    "anticoagulated": ["Coumadin", "Jantoven", "Lovenox", "Fragmin", "Arixtra", "Eliquis", "Xarelto",
                       "Savaysa", "Pradaxa", "Angiomax"],
}

# Value-set extracts that list drug products (SCD/SBD); matched to classes by
# the ingredient names in each display.
PRODUCT_EXTRACTS = [
    "Anticoagulant_Therapy", "Conjugated_Estrogens", "Direct_Thrombin_Inhibitor", "Diuretics",
    "Glucocorticoids_oral_only", "High_Intensity_Statin_Therapy", "Injectable_Factor_Xa_Inhibitor_for_VTE_Prophylaxis",
    "Low_Intensity_Statin_Therapy", "Low_Molecular_Weight_Heparin_for_VTE_Prophylaxis",
    "Moderate_Intensity_Statin_Therapy", "Opioids", "Oral_Factor_Xa_Inhibitor_for_VTE_Prophylaxis_or_VTE_Treatmen",
    "Rivaroxaban_for_VTE_Prophylaxis", "Statin_Grouper", "Unfractionated_Heparin", "Warfarin",
]
# Extracts listing ingredient-level RxNorm codes (used to confirm or fill
# ingredients[].rxnorm when the display is exactly the ingredient).
INGREDIENT_EXTRACTS = ["Beta_Blocker_Therapy_Ingredient", "Statin_Allergen",
                       "US_Core_Common_substances_for_allergy_and_intolerance_docume",
                       "ACE_Inhibitor_or_ARB_Ingredient"]

NON_SYSTEMIC = re.compile(
    r"ophthalmic|otic|nasal|inhal|topical|rectal|enema|vaginal|cream|ointment|lotion|paste|"
    r"mucosal|foam|shampoo|dental|intravitreal|intraocular|drug implant|medicated pad|"
    r"irrigation|transdermal|metered dose|dry powder|gel\b|spray", re.I)
SYSTEMIC = re.compile(r"oral|inject|syringe|cartridge|auto-injector|tablet|capsule", re.I)


def is_systemic(display):
    return not NON_SYSTEMIC.search(display) and bool(SYSTEMIC.search(display))


def word_re(name):
    return re.compile(r"(?<![A-Za-z0-9])" + re.escape(name) + r"(?![A-Za-z0-9])", re.I)


def build_drug_classes(src):
    all_classes = [c + ("medication",) for c in CLASSES] + [QUININE + ("safety",), ANTICOAG + ("dvt",)]

    # ingredient-level codes from the files: name(lower) -> {code: [sources]}
    ingr_codes = defaultdict(lambda: defaultdict(set))
    for stem in INGREDIENT_EXTRACTS:
        for system, code, display, vid in src.extract(stem):
            if system == RXNORM:
                ingr_codes[display.lower()][code].add(stem)
    for system, code, display, mods in src.synthea:
        if system == RXNORM:
            ingr_codes[display.lower()][code].add("synthea")

    all_ingredient_names = set()
    for c in all_classes:
        for name, _ in c[6]:
            all_ingredient_names.add(name.lower())

    # candidate product rows: (code, display, source-string)
    candidates = defaultdict(lambda: {"displays": [], "sources": []})
    for stem in PRODUCT_EXTRACTS:
        by_code = defaultdict(list)
        for system, code, display, vid in src.extract(stem):
            if system == RXNORM:
                by_code[code].append((display, vid))
        for code, lst in by_code.items():
            candidates[code]["displays"].extend((0, d) for d, _ in lst)
            candidates[code]["sources"].append(src.cite(stem, [vid for _, vid in lst]))
    syn = defaultdict(list)
    for system, code, display, mods in src.synthea:
        if system == RXNORM:
            syn[code].append((display, mods))
    for code, lst in syn.items():
        candidates[code]["displays"].extend((1, d) for d, _ in lst)
        candidates[code]["sources"].append(synthea_cite([m for _, m in lst]))
    for system, code, display, _ in src.htn:
        candidates[code]["displays"].append((2, display))
        candidates[code]["sources"].append(HTN_CITE)

    out_classes = []
    summary = []
    for (code, display, strength, note, sources, systemic_only, ingredients, atc, category) in all_classes:
        patterns = [word_re(n) for n, _ in ingredients]
        ingr_json = []
        for name, rx in ingredients:
            found = ingr_codes.get(name.lower(), {})
            if rx:
                if found and rx not in found:
                    log("ingredient %s: clinical-rules.md gives RxNorm %s, files give %s" % (
                        name, rx, ",".join(sorted(found))))
            elif len(found) == 1:
                rx = next(iter(found))
                log("ingredient %s: RxNorm %s taken from %s (display exactly the ingredient)" % (
                    name, rx, ", ".join(sorted(next(iter(found.values()))))))
            elif len(found) > 1:
                log("ingredient %s: several codes in files %s; none used" % (name, sorted(found)))
            j = OrderedDict([("name", name)])
            if rx:
                j["rxnorm"] = rx
            ingr_json.append(j)

        products = {}
        brands = set(BRANDS.get(code, []))
        skipped_route = []
        for rx in sorted(candidates, key=code_sort_key):
            cand = candidates[rx]
            displays = sorted(cand["displays"])
            disp = displays[0][1]
            if disp.lower() in all_ingredient_names:
                continue  # ingredient-level concept, not a product
            if not any(p.search(d) for p in patterns for _, d in displays):
                continue
            if systemic_only and not is_systemic(disp):
                skipped_route.append("%s %s" % (rx, disp))
                continue
            products[rx] = OrderedDict([("rxnorm", rx), ("display", disp),
                                        ("source", "; ".join(sorted(set(cand["sources"]))))])
            for _, d in displays:
                for b in re.findall(r"\[([^\]]+)\]", d):
                    brands.add(b)
        if skipped_route:
            log("%s: left out %d non-systemic product(s): %s" % (code, len(skipped_route), "; ".join(skipped_route)))

        c = OrderedDict()
        c["code"] = code
        c["display"] = display
        c["category"] = category
        c["strength"] = strength
        c["strengthNote"] = note
        c["sources"] = sources
        c["systemicOnly"] = systemic_only
        c["ingredients"] = ingr_json
        c["brands"] = sorted(brands, key=lambda b: (b.lower(), b))
        c["atc"] = atc
        c["products"] = [products[k] for k in sorted(products, key=code_sort_key)]
        out_classes.append(c)
        summary.append((code, len(products)))

    doc = OrderedDict([("resourceType", "cramp-cds/drug-classes"), ("version", VERSION),
                       ("classes", out_classes)])
    return doc, summary


# ---------------------------------------------------------------------------
# Sources and labs
# ---------------------------------------------------------------------------



def build_labs():
    # r2: each limit in every unit clinical-rules.md writes it in, as decimal
    # text (0.70 keeps its two decimals: a converted result is rounded to the
    # limit's decimals before it is compared).
    def lab(finding, analyte, vsid, cond, limits, mm, charge, albumin=False):
        entry = OrderedDict([
            ("finding", finding), ("analyte", analyte), ("valueSet", vsid), ("conditionValueSet", cond),
            ("lowLimits", [OrderedDict([("value", v), ("unit", u)]) for v, u in limits]),
            ("molarMass", mm), ("charge", charge)])
        if albumin:
            entry["albuminAdjusted"] = True
        entry["source"] = "clinical-rules.md \u00a72 r2"
        return entry
    return OrderedDict([("labs", [
        lab("hypokalemia", "potassium", "potassium-lab", "hypokalemia-condition",
            [("3.5", "mmol/L"), ("3.5", "mEq/L")], 39.098, 1),
        lab("hyponatremia", "sodium", "sodium-lab", "hyponatremia-condition",
            [("135", "mmol/L"), ("135", "mEq/L")], 22.990, 1),
        lab("hypocalcemia", "calcium", "calcium-total-lab", "hypocalcemia-condition",
            [("8.5", "mg/dL"), ("2.12", "mmol/L")], 40.078, 2, albumin=True),
        lab("hypocalcemia", "ionized calcium", "calcium-ionized-lab", "hypocalcemia-condition",
            [("1.12", "mmol/L"), ("4.5", "mg/dL")], 40.078, 2),
        lab("hypomagnesemia", "magnesium", "magnesium-lab", "hypomagnesemia-condition",
            [("1.7", "mg/dL"), ("0.70", "mmol/L"), ("1.4", "mEq/L")], 24.305, 2),
    ])])


# ---------------------------------------------------------------------------


def dump(path, obj):
    text = json.dumps(obj, indent=1, ensure_ascii=False) + "\n"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def main(argv):
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    root = argv[1] if len(argv) > 1 else os.path.join(repo, "..", "shared", "knowledge-sources")
    root = os.path.normpath(root)
    out = os.path.join(repo, "cds-hooks", "knowledge")
    src = Sources(root)

    vsets = build_valuesets(src)
    vsdir = os.path.join(out, "valuesets")
    written = set()
    print("Value sets:")
    for v in vsets:
        r = v.resource()
        n_conc = sum(len(i.get("concept", [])) for i in r["compose"]["include"])
        n_filt = sum(1 for i in r["compose"]["include"] if "filter" in i)
        dump(os.path.join(vsdir, v.id + ".json"), r)
        written.add(v.id + ".json")
        print("  %-36s %-26s concepts=%-6d is-a filters=%d" % (v.id, v.finding, n_conc, n_filt))
    # remove value-set files this build no longer produces
    for name in sorted(os.listdir(vsdir)):
        if name.endswith(".json") and name not in written:
            os.remove(os.path.join(vsdir, name))
            print("  removed stale %s" % name)

    doc, summary = build_drug_classes(src)
    dump(os.path.join(out, "drug-classes.json"), doc)
    print("Drug classes (products):")
    for code, n in summary:
        print("  %-28s %d" % (code, n))

    dump(os.path.join(out, "labs.json"), build_labs())

    print("Judgement calls and exclusions:")
    for msg in LOG:
        print("  - " + msg)


if __name__ == "__main__":
    main(sys.argv)
