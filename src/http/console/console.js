// The tester console: choose a patient (a sample from GET /examples, or a
// pasted / uploaded Bundle), a hook and, for order hooks, a draft order;
// send a real CDS Hooks request; show request, response and cards.

import {
  HOOKS, InputError, parseJson, checkBundle, checkDraft, analyseBundle, buildRequest, indexRequest,
  patientName, describeResource, describeProblem,
} from './fhir.js';
import { call, getJson } from './api.js';
import { renderCard, renderProblem, problemText } from './cards.js';
import { h, replace, json } from './dom.js';

const PASTE = '__paste';
const BUNDLE_DRAFT = 'bundle:';
const EXAMPLE_DRAFT = 'example:';

const $ = (id) => document.getElementById(id);
const ui = {
  form: $('request-form'),
  patientSelect: $('patient-select'),
  patientDescription: $('patient-description'),
  pasteArea: $('paste-area'),
  bundleText: $('bundle-text'),
  bundleFile: $('bundle-file'),
  patientSummary: $('patient-summary'),
  editSample: $('edit-sample'),
  orderFieldset: $('order-fieldset'),
  draftSelect: $('draft-select'),
  draftDescription: $('draft-description'),
  draftPaste: $('draft-paste'),
  draftText: $('draft-text'),
  send: $('send'),
  sendTarget: $('send-target'),
  status: $('status'),
  resultsTitle: $('results-title'),
  error: $('error'),
  cards: $('cards'),
  requestJson: $('request-json'),
  responseJson: $('response-json'),
  summaryService: $('summary-service'),
  summaryRefresh: $('summary-refresh'),
  summaryTable: $('summary-table'),
};

const state = {
  examples: { patients: [], draftOrders: [] },
  cache: new Map(), // example file -> parsed JSON
  sending: false,
};

function examplePath(file) {
  return `/examples/${file.split('/').map(encodeURIComponent).join('/')}`;
}

async function loadExample(file) {
  if (!state.cache.has(file)) {
    state.cache.set(file, getJson(examplePath(file)).catch((error) => {
      state.cache.delete(file);
      throw error;
    }));
  }
  return state.cache.get(file);
}

function selectedHook() {
  const checked = ui.form.querySelector('input[name="hook"]:checked');
  return checked ? checked.value : 'patient-view';
}

function setHook(hook) {
  const input = ui.form.querySelector(`input[name="hook"][value="${CSS.escape(hook)}"]`);
  if (input) input.checked = true;
  hookChanged();
}

function currentPatientExample() {
  return state.examples.patients.find((p) => p.file === ui.patientSelect.value);
}

function currentDraftExample() {
  const value = ui.draftSelect.value;
  return value.startsWith(EXAMPLE_DRAFT) ? state.examples.draftOrders.find((d) => d.file === value.slice(EXAMPLE_DRAFT.length)) : undefined;
}

// ---------------------------------------------------------------- status

/** Says `text` in the live region; `more` is read out too but not shown. */
function announce(text, more = '') {
  // Emptied first, so that the same text is announced again.
  ui.status.replaceChildren();
  window.setTimeout(() => {
    replace(ui.status, text, more ? h('span', { class: 'visually-hidden' }, ` ${more}`) : null);
  }, 20);
}

function clearError() {
  ui.error.hidden = true;
  ui.error.replaceChildren();
}

function showInputError(error) {
  ui.error.hidden = false;
  replace(ui.error, h('div', { class: 'problem__body' },
    h('p', { class: 'problem__title' }, h('strong', {}, 'Not sent: '), error.message),
    error.detail ? h('p', { class: 'problem__text' }, error.detail) : null));
  ui.status.textContent = '';
  revealResults();
}

function showProblem(title, problem) {
  ui.error.hidden = false;
  replace(ui.error, renderProblem(title, problem));
  ui.status.textContent = '';
  revealResults();
}

/** Scrolls the results' heading into view when it is off screen (focus stays where it is). */
function revealResults() {
  const box = ui.resultsTitle.getBoundingClientRect();
  if (box.top < 0 || box.bottom > window.innerHeight) {
    ui.resultsTitle.scrollIntoView({ block: 'start' });
  }
}

// ---------------------------------------------------------------- patient

async function patientChanged() {
  const value = ui.patientSelect.value;
  const pasting = value === PASTE;
  state.bundleDrafts = [];
  ui.pasteArea.hidden = !pasting;
  ui.editSample.hidden = pasting || !value;
  const example = currentPatientExample();
  replace(ui.patientDescription, example ? [example.description || '', expectation('Expected cards', example.expectCards, example.hook)] : '');
  if (pasting) {
    summarisePasted(true);
  } else if (example) {
    if (example.hook && HOOKS[example.hook]) setHook(example.hook);
    replace(ui.patientSummary, h('p', { class: 'hint' }, 'Loading…'));
    try {
      const bundle = await loadExample(example.file);
      if (ui.patientSelect.value === example.file) summarise(bundle);
    } catch (error) {
      if (ui.patientSelect.value === example.file) {
        replace(ui.patientSummary, renderProblem(`Could not load the sample ${example.file}:`, error.problem));
      }
    }
  }
  refreshDraftChoices();
}

function expectation(label, topics, hook) {
  if (!Array.isArray(topics)) return null;
  return h('span', { class: 'expect' }, ` ${label}${hook ? ` (${hook})` : ''}: `,
    topics.length > 0 ? topics.map((t, i) => [i > 0 ? ', ' : '', h('code', {}, t)]) : 'none', '.');
}

let pasteTimer;
/** Summarises the pasted Bundle: at once when `now` is true, else after typing pauses. */
function summarisePasted(now) {
  window.clearTimeout(pasteTimer);
  if (now === true) summarisePastedNow();
  else pasteTimer = window.setTimeout(summarisePastedNow, 250);
}

function summarisePastedNow() {
  if (ui.patientSelect.value !== PASTE) return;
  if (ui.bundleText.value.trim() === '') {
    replace(ui.patientSummary, h('p', { class: 'hint' }, 'Paste a Bundle above or upload a file.'));
  } else {
    try {
      summarise(checkBundle(parseJson(ui.bundleText.value, 'The pasted Bundle')));
    } catch (error) {
      if (!(error instanceof InputError)) throw error;
      state.bundleDrafts = [];
      replace(ui.patientSummary, h('p', { class: 'inline-error' }, error.message));
    }
  }
  refreshDraftChoices();
}

function summarise(bundle) {
  const analysis = analyseBundle(bundle);
  const counts = Object.entries(analysis.counts).filter(([type]) => type !== 'Patient')
    .map(([type, n]) => `${n} ${type}`);
  const ignored = Object.entries(analysis.ignored).map(([type, n]) => `${n} ${type}`);
  replace(ui.patientSummary,
    analysis.patient
      ? h('p', { class: 'summary__patient' }, h('strong', {}, patientName(analysis.patient)),
        ` · Patient/${analysis.patient.id ?? '(no id)'}`, describeResource(analysis.patient).includes(',') ? ` · ${describeResource(analysis.patient).split(', ').slice(1).join(', ')}` : '')
      : h('p', { class: 'inline-error' }, `This Bundle has no Patient resource: the request will be sent with patientId "${analysis.patientId ?? 'unknown'}" and no patient, and the service will answer as it sees fit.`),
    analysis.patientCount > 1 ? h('p', { class: 'inline-error' }, `The Bundle holds ${analysis.patientCount} Patients; the first one is used.`) : null,
    h('p', { class: 'hint' }, counts.length > 0 ? `Record: ${counts.join(', ')}.` : 'The record holds no other resources.'),
    analysis.drafts.length > 0 ? h('p', { class: 'hint' }, `${analysis.drafts.length} draft MedicationRequest(s): offered as draft orders, not sent as prefetch.`) : null,
    ignored.length > 0 ? h('p', { class: 'hint' }, `Not sent (no prefetch key takes them): ${ignored.join(', ')}.`) : null);
  state.bundleDrafts = analysis.drafts;
}

async function currentBundle() {
  if (ui.patientSelect.value === PASTE) {
    return checkBundle(parseJson(ui.bundleText.value, 'The pasted Bundle'));
  }
  const example = currentPatientExample();
  if (!example) throw new InputError('Choose a sample patient, or paste a FHIR Bundle.');
  try {
    return structuredClone(await loadExample(example.file));
  } catch (error) {
    if (error.problem) {
      const input = new InputError(`the sample ${example.file} could not be loaded.`, problemText('', error.problem));
      throw input;
    }
    throw error;
  }
}

async function editSample() {
  const example = currentPatientExample();
  if (!example) return;
  try {
    const bundle = await loadExample(example.file);
    ui.bundleText.value = json(bundle);
    ui.patientSelect.value = PASTE;
    await patientChanged();
    ui.bundleText.focus();
  } catch (error) {
    replace(ui.patientSummary, renderProblem(`Could not load the sample ${example.file}:`, error.problem));
  }
}

async function fileChosen() {
  const file = ui.bundleFile.files && ui.bundleFile.files[0];
  if (!file) return;
  ui.bundleText.value = await file.text();
  summarisePasted(true);
}

// ---------------------------------------------------------------- hook and draft orders

function hookChanged() {
  const hook = selectedHook();
  ui.orderFieldset.hidden = !HOOKS[hook].orders;
  ui.sendTarget.textContent = `POST /cds-services/${HOOKS[hook].service}`;
}

function refreshDraftChoices() {
  const previous = ui.draftSelect.value;
  const options = [];
  for (const draft of state.examples.draftOrders) {
    options.push(h('option', { value: `${EXAMPLE_DRAFT}${draft.file}` }, draft.title || draft.file));
  }
  const drafts = ui.patientSelect.value === PASTE || currentPatientExample() ? (state.bundleDrafts || []) : [];
  drafts.forEach((draft, index) => {
    options.push(h('option', { value: `${BUNDLE_DRAFT}${index}` },
      `From the Bundle: ${describeResource(draft) || `MedicationRequest/${draft.id}`}`));
  });
  options.push(h('option', { value: PASTE }, 'Paste a MedicationRequest…'));
  replace(ui.draftSelect, options);
  if ([...ui.draftSelect.options].some((o) => o.value === previous)) ui.draftSelect.value = previous;
  draftChanged();
}

function draftChanged() {
  const value = ui.draftSelect.value;
  ui.draftPaste.hidden = value !== PASTE;
  const example = currentDraftExample();
  if (example) {
    replace(ui.draftDescription, example.description || '', expectation('Expected cards', example.expectCards));
  } else if (value.startsWith(BUNDLE_DRAFT)) {
    replace(ui.draftDescription, 'A draft MedicationRequest found in the patient Bundle.');
  } else {
    replace(ui.draftDescription, 'Paste one FHIR MedicationRequest (or a Bundle of draft orders). The patient becomes its subject; an id is added when it has none.');
  }
}

async function currentDrafts(bundle) {
  const value = ui.draftSelect.value;
  if (value === PASTE) {
    return checkDraft(parseJson(ui.draftText.value, 'The pasted draft order'));
  }
  if (value.startsWith(BUNDLE_DRAFT)) {
    const drafts = analyseBundle(bundle).drafts;
    const draft = drafts[Number(value.slice(BUNDLE_DRAFT.length))];
    if (!draft) throw new InputError('That draft order is no longer in the Bundle: choose another.');
    return [draft];
  }
  const example = currentDraftExample();
  if (!example) throw new InputError('Choose a draft order.');
  try {
    const document = structuredClone(await loadExample(example.file));
    return checkDraft(document);
  } catch (error) {
    if (error.problem) throw new InputError(`the draft order ${example.file} could not be loaded.`, problemText('', error.problem));
    throw error;
  }
}

// ---------------------------------------------------------------- send

/** Counts finished sends (cards shown, error shown or input refused): tests wait on it. */
function finished() {
  document.body.dataset.runs = String(Number(document.body.dataset.runs || 0) + 1);
}

async function send(event) {
  event.preventDefault();
  if (state.sending) return;
  try {
    await sendOnce();
  } catch (error) {
    state.sending = false;
    ui.send.disabled = false;
    ui.cards.removeAttribute('aria-busy');
    showProblem('The console failed:', describeProblem(0, 'Error', String(error && error.stack ? error.stack : error)));
  } finally {
    finished();
  }
}

async function sendOnce() {
  clearError();
  if (ui.patientSelect.value === PASTE) summarisePasted(true);
  const hook = selectedHook();
  const serviceId = HOOKS[hook].service;
  let bundle;
  let request;
  try {
    bundle = await currentBundle();
    const analysis = analyseBundle(bundle);
    const drafts = HOOKS[hook].orders ? await currentDrafts(bundle) : [];
    request = buildRequest(hook, analysis, drafts, crypto.randomUUID());
  } catch (error) {
    if (!(error instanceof InputError)) throw error;
    showInputError(error);
    return;
  }

  state.sending = true;
  ui.send.disabled = true;
  ui.cards.setAttribute('aria-busy', 'true');
  ui.requestJson.textContent = json(request);
  ui.responseJson.textContent = 'Waiting for the answer…';
  replace(ui.cards, h('p', { class: 'empty' }, `Sending ${hook} to ${serviceId}…`));
  ui.status.textContent = `Sending ${hook}…`;

  const result = await call('POST', `/cds-services/${serviceId}`, request);

  state.sending = false;
  ui.send.disabled = false;
  ui.cards.removeAttribute('aria-busy');
  ui.responseJson.textContent = result.body !== undefined ? json(result.body) : (result.text || '(empty body)');
  const line = h('p', { class: 'exchange__line' }, h('code', {}, `POST /cds-services/${serviceId}`), ` → HTTP ${result.status} ${result.statusText} in ${result.ms} ms`);

  if (!result.ok) {
    replace(ui.cards, line);
    showProblem('The service refused the request:', result.problem);
    return;
  }
  const cards = result.body && Array.isArray(result.body.cards) ? result.body.cards : null;
  if (!cards) {
    replace(ui.cards, line);
    showProblem('The answer is not a CDS Hooks response:', describeProblem(result.status, result.statusText, result.text || '(empty body)'));
    return;
  }
  const resources = indexRequest(request, bundle);
  const context = { serviceId, resources, announce };
  const topics = cards.map((card) => card.source && card.source.topic && card.source.topic.code).filter(Boolean);
  replace(ui.cards,
    line,
    comparison(hook, topics),
    cards.length === 0 ? h('p', { class: 'empty' }, 'No cards: the service has nothing to say for this patient and hook.') : null,
    cards.map((card) => renderCard(card, context)));
  ui.summaryService.value = serviceId;
  revealResults();
  const described = cards.map((card) => `${card.indicator}: ${card.summary}`).join('. ');
  announce(cards.length === 0
    ? `No cards from ${serviceId}.`
    : `${cards.length} card${cards.length === 1 ? '' : 's'} from ${serviceId}.`, described ? `${described}.` : '');
}

/** What /examples says the chosen sample (and draft) should give, next to what came back. */
function comparison(hook, topics) {
  const patient = ui.patientSelect.value === PASTE ? undefined : currentPatientExample();
  const draft = HOOKS[hook].orders ? currentDraftExample() : undefined;
  let expected;
  if (patient && patient.hook === hook && Array.isArray(patient.expectCards)) {
    expected = new Set(patient.expectCards);
  }
  if (draft && Array.isArray(draft.expectCards)) {
    expected = new Set([...(expected || []), ...draft.expectCards]);
  }
  const got = h('span', {}, 'Cards: ', topics.length > 0 ? topics.map((t, i) => [i > 0 ? ', ' : '', h('code', {}, t)]) : 'none');
  if (!expected) return h('p', { class: 'expect-line' }, got, '.');
  const wanted = [...expected].sort();
  const matches = wanted.length === topics.length && [...topics].sort().every((t, i) => t === wanted[i]);
  return h('p', { class: `expect-line ${matches ? 'expect-line--ok' : 'expect-line--differs'}` }, got,
    matches ? ' — as /examples expects.'
      : [` — /examples expects: ${wanted.join(', ') || 'no cards'}`, patient || draft ? ' (see the description of the sample you chose).' : '.']);
}

// ---------------------------------------------------------------- feedback summary

async function showSummary() {
  const service = ui.summaryService.value;
  replace(ui.summaryTable, h('p', { class: 'hint' }, 'Loading…'));
  const result = await call('GET', `/cds-services/${encodeURIComponent(service)}/feedback/summary`);
  if (!result.ok || !result.body) {
    replace(ui.summaryTable, h('div', { class: 'problem' }, renderProblem('Could not read the summary:', result.problem || describeProblem(result.status, result.statusText, result.text))));
    return;
  }
  const rows = Array.isArray(result.body.cardTypes) ? result.body.cardTypes : [];
  const reasons = Array.isArray(result.body.overrideReasons) ? result.body.overrideReasons : [];
  replace(ui.summaryTable,
    rows.length === 0 ? h('p', { class: 'hint' }, `No cards issued by ${service} in the last 30 days.`)
      : h('div', { class: 'table-wrap' }, h('table', { class: 'table' },
        h('caption', {}, `Cards issued by ${service}, last 30 days`),
        h('thead', {}, h('tr', {}, ['Card type', 'Issued', 'Accepted', 'Overridden', 'No feedback'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, rows.map((row) => h('tr', {},
          h('th', { scope: 'row' }, row.cardType), h('td', {}, row.issued), h('td', {}, row.accepted),
          h('td', {}, row.overridden), h('td', {}, row.withoutFeedback)))))),
    reasons.length > 0 ? h('p', { class: 'hint' }, 'Override reasons: ', reasons.map((r) => `${r.cardType ? `${r.cardType}: ` : ''}${r.display || r.code || 'no coded reason'}${r.count !== undefined ? ` (${r.count})` : ''}`).join('; ')) : null);
}

// ---------------------------------------------------------------- start

async function start() {
  ui.form.addEventListener('submit', (event) => { send(event); });
  ui.patientSelect.addEventListener('change', () => { patientChanged(); });
  ui.bundleText.addEventListener('input', summarisePasted);
  ui.bundleFile.addEventListener('change', () => { fileChosen(); });
  ui.editSample.addEventListener('click', () => { editSample(); });
  ui.draftSelect.addEventListener('change', draftChanged);
  for (const radio of ui.form.querySelectorAll('input[name="hook"]')) radio.addEventListener('change', hookChanged);
  ui.summaryRefresh.addEventListener('click', () => { showSummary(); });
  hookChanged();

  getJson('/cds-services').then((discovery) => {
    for (const service of discovery.services || []) {
      const note = document.querySelector(`.choice__note[data-service="${CSS.escape(service.id)}"]`);
      if (note && service.title) note.textContent = service.title;
    }
  }).catch(() => {});

  try {
    const index = await getJson('/examples');
    state.examples = {
      asOf: index.asOf,
      patients: Array.isArray(index.patients) ? index.patients : [],
      draftOrders: Array.isArray(index.draftOrders) ? index.draftOrders : [],
    };
  } catch (error) {
    state.examples = { patients: [], draftOrders: [] };
    state.examplesProblem = error.problem;
  }
  const options = state.examples.patients.map((patient) => h('option', { value: patient.file }, patient.title || patient.file));
  replace(ui.patientSelect, options, h('option', { value: PASTE }, 'Paste or upload a FHIR Bundle…'));
  ui.patientSelect.value = options.length > 0 ? state.examples.patients[0].file : PASTE;
  await patientChanged();
  if (state.examplesProblem) {
    replace(ui.patientDescription, h('span', { class: 'inline-error' },
      `No sample patients: ${problemText('GET /examples failed:', state.examplesProblem)} Paste or upload a Bundle instead.`));
  }
  document.body.dataset.ready = 'true';
}

start();
