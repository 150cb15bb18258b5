// Builds a CDS Hooks request from a FHIR Bundle the way an EHR would:
// context from the chosen patient and draft orders, prefetch as searchset
// Bundles per key of the services' templates. Pure functions: no DOM, no
// network (the browser tests import this module too).

export const HOOKS = {
  'patient-view': { service: 'leg-cramps-patient-view', orders: false },
  'order-select': { service: 'leg-cramps-order-select', orders: true },
  'order-sign': { service: 'leg-cramps-order-sign', orders: true },
};

export const USER_ID = 'Practitioner/console-tester';

/** A problem with input the user gave: shown as is, never sent. */
export class InputError extends Error {
  constructor(message, detail) {
    super(message);
    this.name = 'InputError';
    this.detail = detail;
  }
}

/**
 * Parses text typed or uploaded by the user as JSON. Throws an InputError
 * naming the line and column of a syntax error.
 */
export function parseJson(text, what) {
  if (typeof text !== 'string' || text.trim() === '') {
    throw new InputError(`${what} is empty: paste or upload FHIR JSON.`);
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // a byte order mark from some editors
  try {
    return JSON.parse(text);
  } catch (error) {
    const message = String(error && error.message ? error.message : error);
    const offset = jsonErrorOffset(text);
    let where = '';
    if (offset >= 0) {
      const before = text.slice(0, offset);
      const line = before.split('\n').length;
      const column = offset - before.lastIndexOf('\n');
      where = offset >= text.length
        ? ` (it ends too early, at line ${line}, column ${column})`
        : ` (line ${line}, column ${column}, at “${text.slice(offset, offset + 12).replace(/\s+/g, ' ')}”)`;
    }
    throw new InputError(`${what} is not valid JSON${where}.`, `The JSON parser says: ${message}`);
  }
}

/**
 * Where JSON text first goes wrong (JSON.parse does not always say): the
 * offset of the offending character, text.length when the text ends too
 * early, or -1 when it is valid.
 */
export function jsonErrorOffset(text) {
  let i = 0;
  const fail = () => { throw i; };
  const space = () => {
    while (i < text.length && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r')) i += 1;
  };
  const string = () => {
    i += 1;
    while (i < text.length) {
      const c = text[i];
      if (c === '"') {
        i += 1;
        return;
      }
      if (c === '\\') {
        const next = text[i + 1];
        if (next !== undefined && '"\\/bfnrt'.includes(next)) i += 2;
        else if (next === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) i += 6;
        else {
          i += 1;
          fail();
        }
      } else if (c < ' ') {
        fail();
      } else {
        i += 1;
      }
    }
    fail();
  };
  const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
  const value = () => {
    space();
    const c = text[i];
    if (c === '{') {
      i += 1;
      space();
      if (text[i] === '}') {
        i += 1;
        return;
      }
      for (;;) {
        space();
        if (text[i] !== '"') fail();
        string();
        space();
        if (text[i] !== ':') fail();
        i += 1;
        value();
        space();
        if (text[i] === ',') i += 1;
        else if (text[i] === '}') {
          i += 1;
          return;
        } else fail();
      }
    }
    if (c === '[') {
      i += 1;
      space();
      if (text[i] === ']') {
        i += 1;
        return;
      }
      for (;;) {
        value();
        space();
        if (text[i] === ',') i += 1;
        else if (text[i] === ']') {
          i += 1;
          return;
        } else fail();
      }
    }
    if (c === '"') {
      string();
      return;
    }
    NUMBER.lastIndex = i;
    if (NUMBER.test(text)) {
      i = NUMBER.lastIndex;
      return;
    }
    for (const word of ['true', 'false', 'null']) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return;
      }
    }
    fail();
  };
  try {
    value();
    space();
    if (i < text.length) fail();
    return -1;
  } catch (offset) {
    if (typeof offset === 'number') return Math.min(offset, text.length);
    throw offset;
  }
}

/** The resources of a Bundle (entries without a resource are skipped). */
export function bundleResources(bundle) {
  if (!bundle || !Array.isArray(bundle.entry)) return [];
  return bundle.entry
    .map((entry) => (entry && typeof entry === 'object' ? entry.resource : undefined))
    .filter((resource) => resource && typeof resource === 'object' && typeof resource.resourceType === 'string');
}

/** Checks that a parsed document is a FHIR Bundle; throws an InputError if not. */
export function checkBundle(document) {
  if (Array.isArray(document) || document === null || typeof document !== 'object') {
    throw new InputError('The patient data must be a FHIR Bundle (a JSON object with "resourceType": "Bundle").');
  }
  if (document.resourceType !== 'Bundle') {
    const kind = typeof document.resourceType === 'string' ? `a ${document.resourceType}` : 'a JSON object without a resourceType';
    throw new InputError(`The patient data is ${kind}, not a FHIR Bundle. Wrap the patient's resources in a Bundle ("resourceType": "Bundle", "entry": [{"resource": …}]).`);
  }
  if (document.entry !== undefined && !Array.isArray(document.entry)) {
    throw new InputError('The Bundle\'s "entry" must be an array of {"resource": …} objects.');
  }
  return document;
}

/** A short human name for a Patient resource. */
export function patientName(patient) {
  const name = Array.isArray(patient && patient.name) ? patient.name[0] : undefined;
  if (!name) return patient && patient.id ? `Patient/${patient.id}` : 'unnamed patient';
  if (typeof name.text === 'string' && name.text) return name.text;
  const given = Array.isArray(name.given) ? name.given.join(' ') : '';
  return [given, name.family].filter(Boolean).join(' ') || `Patient/${patient.id}`;
}

/** A short label for any resource: its code, medication or type text. */
export function describeResource(resource) {
  if (!resource || typeof resource !== 'object') return '';
  if (resource.resourceType === 'Patient') {
    return [patientName(resource), resource.gender, resource.birthDate && `born ${resource.birthDate}`].filter(Boolean).join(', ');
  }
  const concept = resource.code || resource.medicationCodeableConcept || (Array.isArray(resource.type) ? resource.type[0] : resource.type)
    || (Array.isArray(resource.reasonCode) ? resource.reasonCode[0] : undefined);
  let text = conceptText(concept);
  if (!text && resource.medicationReference && typeof resource.medicationReference.display === 'string') {
    text = resource.medicationReference.display;
  }
  if (!text && resource.medicationReference && typeof resource.medicationReference.reference === 'string') {
    text = resource.medicationReference.reference;
  }
  const status = typeof resource.status === 'string' ? resource.status
    : conceptText(resource.clinicalStatus);
  return [text, status && `(${status})`].filter(Boolean).join(' ');
}

function conceptText(concept) {
  if (!concept || typeof concept !== 'object') return '';
  if (typeof concept.text === 'string' && concept.text) return concept.text;
  const codings = Array.isArray(concept.coding) ? concept.coding : [];
  for (const coding of codings) {
    if (coding && typeof coding.display === 'string' && coding.display) return coding.display;
  }
  for (const coding of codings) {
    if (coding && coding.code) return `${coding.system ? `${coding.system} ` : ''}${coding.code}`;
  }
  return '';
}

/** Which prefetch key a resource goes to (undefined: none). */
const PREFETCH_KEYS = {
  Condition: 'conditions',
  MedicationRequest: 'medicationRequests',
  MedicationStatement: 'medicationStatements',
  Observation: 'observations',
  Procedure: 'procedures',
  // The services search encounters three ways (inpatient stays, visits by
  // reason, visits by type); the console answers each with every encounter
  // of the bundle, as an EHR without those filters would: the service reads
  // each one once and keeps only what its rules need.
  Encounter: 'inpatientEncounters',
  // The DVT work-up (§6 r2): read by the patient-view service only.
  ServiceRequest: 'serviceRequests',
  DiagnosticReport: 'diagnosticReports',
  ImagingStudy: 'imagingStudies',
};

function searchset(entries) {
  if (entries.length === 0) return null;
  return { resourceType: 'Bundle', type: 'searchset', total: entries.filter((e) => e.search.mode === 'match').length, entry: entries };
}

/**
 * Reads a patient Bundle: the Patient, the prefetch it gives, the draft
 * MedicationRequests in it, and what no prefetch key takes.
 */
export function analyseBundle(bundle) {
  const resources = bundleResources(bundle);
  const patients = resources.filter((r) => r.resourceType === 'Patient');
  const patient = patients[0];
  const buckets = Object.fromEntries(Object.values(PREFETCH_KEYS).map((key) => [key, []]));
  const medications = [];
  const drafts = [];
  const ignored = {};
  for (const resource of resources) {
    if (resource.resourceType === 'Patient') continue;
    if (resource.resourceType === 'Medication') {
      medications.push(resource);
      continue;
    }
    if (resource.resourceType === 'MedicationRequest' && resource.status === 'draft') {
      drafts.push(resource);
      continue;
    }
    const key = PREFETCH_KEYS[resource.resourceType];
    if (key) buckets[key].push(resource);
    else ignored[resource.resourceType] = (ignored[resource.resourceType] || 0) + 1;
  }
  const match = (resource) => ({ resource, search: { mode: 'match' } });
  const include = (resource) => ({ resource, search: { mode: 'include' } });
  const prefetch = { patient: patient || null };
  for (const key of Object.values(PREFETCH_KEYS)) {
    let entries = buckets[key].map(match);
    if ((key === 'medicationRequests' || key === 'medicationStatements') && entries.length > 0) {
      entries = entries.concat(medications.map(include));
    }
    prefetch[key] = searchset(entries);
  }
  prefetch.visitsByReason = prefetch.inpatientEncounters;
  prefetch.visitsByType = prefetch.inpatientEncounters;
  if (medications.length > 0 && buckets.medicationRequests.length === 0 && buckets.medicationStatements.length === 0) {
    ignored.Medication = medications.length;
  }
  return {
    patient,
    patientCount: patients.length,
    patientId: patient && typeof patient.id === 'string' ? patient.id : guessPatientId(resources),
    prefetch,
    drafts,
    ignored,
    counts: countTypes(resources),
  };
}

function countTypes(resources) {
  const counts = {};
  for (const resource of resources) counts[resource.resourceType] = (counts[resource.resourceType] || 0) + 1;
  return counts;
}

/** Without a Patient resource: the patient the resources' subjects name. */
function guessPatientId(resources) {
  for (const resource of resources) {
    const reference = (resource.subject || resource.patient || {}).reference;
    const match = typeof reference === 'string' ? /^Patient\/([^/]+)$/.exec(reference) : null;
    if (match) return match[1];
  }
  return undefined;
}

/**
 * The draft orders as a collection Bundle for the context: each draft gets
 * the patient as subject, an id when it has none, and status draft.
 * `drafts` is a list of MedicationRequest (or other request) resources.
 */
export function draftOrdersBundle(drafts, patientId) {
  const resources = drafts.map((draft, index) => {
    const resource = structuredClone(draft);
    if (typeof resource.id !== 'string' || resource.id === '') resource.id = `console-draft-${index + 1}`;
    if (resource.status === undefined) resource.status = 'draft';
    if (resource.intent === undefined && resource.resourceType === 'MedicationRequest') resource.intent = 'order';
    if (patientId !== undefined) resource.subject = { reference: `Patient/${patientId}` };
    return resource;
  });
  return { resourceType: 'Bundle', type: 'collection', entry: resources.map((resource) => ({ resource })) };
}

/**
 * Reads pasted draft-order JSON: one request resource (MedicationRequest
 * most often) or a Bundle of them. Throws an InputError when it is neither.
 */
export function checkDraft(document) {
  if (Array.isArray(document) || document === null || typeof document !== 'object') {
    throw new InputError('The draft order must be a FHIR MedicationRequest (a JSON object with "resourceType": "MedicationRequest").');
  }
  if (document.resourceType === 'Bundle') {
    const resources = bundleResources(document);
    if (resources.length === 0) throw new InputError('The draft-order Bundle holds no resources.');
    return resources;
  }
  if (typeof document.resourceType !== 'string') {
    throw new InputError('The draft order has no "resourceType": paste a FHIR MedicationRequest.');
  }
  return [document];
}

/**
 * The CDS Hooks request for `hook` from an analysed Bundle and the draft
 * orders (resources; order hooks only).
 */
export function buildRequest(hook, analysis, drafts, hookInstance) {
  const info = HOOKS[hook];
  if (!info) throw new InputError(`Unknown hook "${hook}".`);
  const context = { userId: USER_ID, patientId: analysis.patientId === undefined ? 'unknown' : analysis.patientId };
  if (info.orders) {
    const bundle = draftOrdersBundle(drafts, analysis.patientId);
    context.draftOrders = bundle;
    if (hook === 'order-select') {
      context.selections = bundle.entry.map(({ resource }) => `${resource.resourceType}/${resource.id}`);
    }
  }
  return { hook, hookInstance, context, prefetch: analysis.prefetch };
}

/** Every resource of the request, by "Type/id", to show a finding's evidence. */
export function indexRequest(request, bundle) {
  const index = new Map();
  const add = (resource) => {
    if (resource && typeof resource === 'object' && typeof resource.resourceType === 'string' && typeof resource.id === 'string') {
      const key = `${resource.resourceType}/${resource.id}`;
      if (!index.has(key)) index.set(key, resource);
    }
    if (resource && Array.isArray(resource.contained)) {
      for (const inner of resource.contained) add(inner);
    }
  };
  for (const resource of bundleResources(bundle)) add(resource);
  const draftOrders = request && request.context && request.context.draftOrders;
  for (const resource of bundleResources(draftOrders)) add(resource);
  return index;
}

/** Reads the status line and every issue of an OperationOutcome answer. */
export function describeProblem(status, statusText, body) {
  const problem = { status, statusText, issues: [], text: '' };
  if (body && typeof body === 'object' && body.resourceType === 'OperationOutcome' && Array.isArray(body.issue)) {
    problem.issues = body.issue.map((issue) => ({
      severity: typeof issue.severity === 'string' ? issue.severity : '',
      code: typeof issue.code === 'string' ? issue.code : '',
      diagnostics: typeof issue.diagnostics === 'string' ? issue.diagnostics
        : (issue.details && typeof issue.details.text === 'string' ? issue.details.text : ''),
      expression: Array.isArray(issue.expression) ? issue.expression.filter((e) => typeof e === 'string') : [],
    }));
  } else if (typeof body === 'string') {
    problem.text = body.slice(0, 2000);
  } else if (body !== undefined && body !== null) {
    problem.text = JSON.stringify(body).slice(0, 2000);
  }
  return problem;
}
