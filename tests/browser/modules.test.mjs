// The console's pure modules under Node, no browser or server needed: the
// Markdown parser and the CDS Hooks request builder.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMarkdown, parseInline, safeUrl } from '../../src/http/console/markdown.js';
import {
  parseJson, jsonErrorOffset, checkBundle, checkDraft, analyseBundle, buildRequest, indexRequest, describeProblem, InputError,
} from '../../src/http/console/fhir.js';

const text = (value) => ({ type: 'text', text: value });

test('Markdown: paragraphs, bold, italic, bullet lists', () => {
  assert.deepEqual(parseMarkdown('**What to do**\n- Stretch _gently_.\n- Drink.\n\nLast line\ngoes on.'), [
    { type: 'p', children: [{ type: 'strong', children: [text('What to do')] }] },
    { type: 'ul', items: [[text('Stretch '), { type: 'em', children: [text('gently')] }, text('.')], [text('Drink.')]] },
    { type: 'p', children: [text('Last line goes on.')] },
  ]);
});

test('Markdown: backslash escapes are literal, and so is anything unmatched', () => {
  assert.deepEqual(parseInline('\\[x\\](javascript:alert(1)) \\*\\*no\\*\\* \\_no\\_ \\<b\\>'), [text('[x](javascript:alert(1)) **no** _no_ <b>')]);
  assert.deepEqual(parseInline('**open and snake_case_word'), [text('**open and snake_case_word')]);
  assert.deepEqual(parseInline('[Wells et al., NEJM 2003; NICE NG158]'), [text('[Wells et al., NEJM 2003; NICE NG158]')]);
});

test('Markdown: links only to http(s)', () => {
  assert.deepEqual(parseInline('[ok](https://example.org/a)'), [{ type: 'link', href: 'https://example.org/a', children: [text('ok')] }]);
  for (const bad of ['[x](javascript:alert(1))', '[x](data:text/html,hi)', '[x](//evil.example)', '[x](vbscript:y)', '[x]( javascript:y)']) {
    assert.ok(parseInline(bad).every((node) => node.type === 'text'), bad);
  }
  assert.equal(safeUrl('JaVaScRiPt:alert(1)'), null);
  assert.equal(safeUrl('https://pubmed.ncbi.nlm.nih.gov/22157068/'), 'https://pubmed.ncbi.nlm.nih.gov/22157068/');
});

test('JSON errors name the line and column', () => {
  assert.equal(jsonErrorOffset('{"a": [1, 2]}'), -1);
  assert.equal(jsonErrorOffset('{"a": [1,, 2]}'), 9);
  assert.equal(jsonErrorOffset('{"a": '), 6);
  assert.throws(() => parseJson('{\n "a": nul\n}', 'The pasted Bundle'), /not valid JSON \(line 2, column 7/);
  assert.throws(() => parseJson('  ', 'The pasted Bundle'), /is empty/);
  assert.throws(() => checkBundle({ resourceType: 'Patient' }), /a Patient, not a FHIR Bundle/);
  assert.throws(() => checkBundle([]), InputError);
  assert.throws(() => checkDraft({ foo: 1 }), /no "resourceType"/);
});

const bundle = {
  resourceType: 'Bundle',
  type: 'collection',
  entry: [
    { resource: { resourceType: 'Patient', id: 'p1', name: [{ given: ['Ann'], family: 'Lee' }] } },
    { resource: { resourceType: 'Condition', id: 'c1', code: { text: 'Leg cramps' } } },
    { resource: { resourceType: 'MedicationRequest', id: 'm1', status: 'active', medicationReference: { reference: 'Medication/med1' } } },
    { resource: { resourceType: 'MedicationRequest', id: 'd1', status: 'draft', medicationCodeableConcept: { text: 'quinine' } } },
    { resource: { resourceType: 'Medication', id: 'med1', code: { text: 'furosemide' } } },
    { resource: { resourceType: 'AllergyIntolerance', id: 'a1' } },
  ],
};

test('the request is built as an EHR would: context, searchset prefetch, draft orders', () => {
  const analysis = analyseBundle(bundle);
  assert.equal(analysis.patientId, 'p1');
  assert.deepEqual(analysis.ignored, { AllergyIntolerance: 1 });
  assert.deepEqual(analysis.drafts.map((d) => d.id), ['d1']);

  const view = buildRequest('patient-view', analysis, [], '00000000-0000-4000-8000-000000000000');
  assert.deepEqual(view.context, { userId: 'Practitioner/console-tester', patientId: 'p1' });
  assert.equal(view.prefetch.patient.id, 'p1');
  assert.deepEqual(view.prefetch.conditions, { resourceType: 'Bundle', type: 'searchset', total: 1, entry: [{ resource: bundle.entry[1].resource, search: { mode: 'match' } }] });
  assert.deepEqual(view.prefetch.medicationRequests.entry.map((e) => `${e.resource.id}:${e.search.mode}`), ['m1:match', 'med1:include']);
  assert.equal(view.prefetch.medicationRequests.total, 1);
  for (const key of ['medicationStatements', 'observations', 'procedures', 'inpatientEncounters', 'visitsByReason', 'visitsByType']) assert.equal(view.prefetch[key], null, key);

  const draft = { resourceType: 'MedicationRequest', medicationCodeableConcept: { text: 'quinine' } };
  const select = buildRequest('order-select', analysis, [draft], '00000000-0000-4000-8000-000000000000');
  const sent = select.context.draftOrders.entry[0].resource;
  assert.deepEqual(sent, { ...draft, id: 'console-draft-1', status: 'draft', intent: 'order', subject: { reference: 'Patient/p1' } });
  assert.deepEqual(select.context.selections, ['MedicationRequest/console-draft-1']);
  assert.equal(draft.id, undefined, 'the chosen draft itself is not changed');
  const sign = buildRequest('order-sign', analysis, [draft], '00000000-0000-4000-8000-000000000000');
  assert.equal(sign.context.selections, undefined);

  const index = indexRequest(select, bundle);
  assert.equal(index.get('Condition/c1').code.text, 'Leg cramps');
  assert.equal(index.get('MedicationRequest/console-draft-1').subject.reference, 'Patient/p1');
});

test('OperationOutcome issues are read with diagnostics and expression', () => {
  const problem = describeProblem(412, 'Precondition Failed', {
    resourceType: 'OperationOutcome',
    issue: [{ severity: 'error', code: 'required', diagnostics: 'prefetch key missing', expression: ['/prefetch/patient'] }],
  });
  assert.deepEqual(problem.issues, [{ severity: 'error', code: 'required', diagnostics: 'prefetch key missing', expression: ['/prefetch/patient'] }]);
  assert.equal(describeProblem(502, 'Bad Gateway', '<html>proxy</html>').text, '<html>proxy</html>');
});
