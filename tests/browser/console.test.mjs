// The tester console in a real headless browser (Debian's chromium through
// playwright-core), against the real server at CRAMP_CDS_URL.
//
//   CRAMP_CDS_URL=http://127.0.0.1:18081 npm test        (in tests/browser)
//
// Screenshots go to CRAMP_CDS_ARTIFACTS (default tests/browser/artifacts/).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import {
  launch, openConsole, choosePatient, chooseHook, chooseDraft, pasteBundle, send, shownCards,
  getJson, postJson, feedbackCounts, screenshot,
} from './helpers.mjs';
import { analyseBundle, buildRequest } from '../../src/http/console/fhir.js';

const QUININE = 'example:draft-orders/quinine.json';
const STATIN = 'example:draft-orders/atorvastatin.json';
const DIALYSIS = 'cramps-dialysis-diabetes.json';
const DVT = 'dvt-after-knee-replacement.json';

// The colour band of each indicator (console.css: --info, --warning, --critical).
const BANDS = { info: 'rgb(31, 111, 197)', warning: 'rgb(232, 161, 0)', critical: 'rgb(198, 40, 40)' };

// A hung browser fails the test instead of the whole run.
const LIMIT = { timeout: 30_000 };

let browser;
let examples;

before(async () => {
  browser = await launch();
  examples = await getJson('/examples');
});

after(async () => {
  if (browser) await browser.close();
});

/** Runs `body` on a fresh console page; fails on page errors, CSP violations, dialogs and foreign requests. */
async function onConsole(body, viewport) {
  const session = await openConsole(browser, viewport);
  try {
    await body(session.page);
    assert.deepEqual(session.problems, [], 'page errors, CSP violations, dialogs or foreign requests');
  } finally {
    await session.close();
  }
}

async function shownRequest(page) {
  return JSON.parse(await page.textContent('#request-json'));
}

async function shownResponse(page) {
  return JSON.parse(await page.textContent('#response-json'));
}

function card(page, topic) {
  return page.locator(`#cards .card[data-topic="${topic}"]`);
}

test('the sample index offers patients, and quinine and a statin as draft orders', LIMIT, () => {
  assert.ok(examples.patients.length >= 3, 'sample patients');
  const drafts = examples.draftOrders.map((d) => d.file);
  assert.ok(drafts.includes('draft-orders/quinine.json'), 'quinine draft');
  assert.ok(drafts.includes('draft-orders/atorvastatin.json'), 'statin draft');
});

test('patient-view on every sample patient shows the cards /examples expects, drawn by indicator', LIMIT, async () => {
  await onConsole(async (page) => {
    const options = await page.$$eval('#patient-select option', (list) => list.map((o) => o.value));
    assert.deepEqual(options, [...examples.patients.map((p) => p.file), '__paste']);
    for (const patient of examples.patients) {
      await choosePatient(page, patient.file);
      assert.equal(await page.inputValue('input[name="hook"]:checked'), patient.hook, `${patient.file}: hook from /examples`);
      await send(page);
      const cards = await shownCards(page);
      assert.deepEqual(cards.map((c) => c.topic).sort(), [...patient.expectCards].sort(), `${patient.file}: cards`);

      // The request shown is a real CDS Hooks request built from the Bundle; the response shown is what came back.
      const request = await shownRequest(page);
      const bundle = await getJson(`/examples/${patient.file}`);
      const patientResource = bundle.entry.map((e) => e.resource).find((r) => r.resourceType === 'Patient');
      assert.equal(request.hook, 'patient-view');
      assert.match(request.hookInstance, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      assert.equal(request.context.patientId, patientResource.id);
      assert.equal(request.context.userId, 'Practitioner/console-tester');
      assert.deepEqual(request.prefetch.patient, patientResource);
      assert.equal(request.prefetch.conditions.type, 'searchset');
      const response = await shownResponse(page);
      assert.deepEqual(response.cards.map((c) => c.uuid), cards.map((c) => c.uuid));

      for (const [index, shown] of cards.entries()) {
        const element = page.locator('#cards .card').nth(index);
        assert.equal(shown.summary, response.cards[index].summary);
        assert.equal(await element.evaluate((e) => getComputedStyle(e).borderLeftColor), BANDS[shown.indicator], `${shown.topic} band`);
        const icon = element.locator('img.card__icon');
        assert.match(await icon.getAttribute('src'), new RegExp(`icon-${shown.indicator}\\.svg$`));
        assert.ok(await icon.evaluate((img) => img.complete && img.naturalWidth > 0), 'icon loaded');
        assert.equal((await element.locator('.card__indicator').textContent()).toLowerCase(), shown.indicator);
        assert.match(await element.locator('.card__source').textContent(), /^Source: cramp-cds/);
        // Markdown detail became elements: bold text and bullet lists, no raw asterisks.
        assert.ok(await element.locator('.card__detail strong').count() > 0, 'bold in detail');
        assert.ok(await element.locator('.card__detail li').count() > 0, 'bullets in detail');
        assert.ok(!(await element.locator('.card__detail').textContent()).includes('**'), 'no raw Markdown');
        // A card without suggestions offers only Dismiss.
        const suggestions = response.cards[index].suggestions || [];
        assert.equal(await element.locator('button.suggestion').count(), suggestions.length);
        assert.equal(await element.locator('button.dismiss-toggle').count(), 1);
      }
    }
  });
});

test('order-select and order-sign with the quinine draft give a critical quinine card; a statin draft gives a culprit card', LIMIT, async () => {
  await onConsole(async (page) => {
    await choosePatient(page, DIALYSIS);
    const quinine = examples.draftOrders.find((d) => d.file === 'draft-orders/quinine.json');
    const statin = examples.draftOrders.find((d) => d.file === 'draft-orders/atorvastatin.json');
    for (const hook of ['order-select', 'order-sign']) {
      await chooseHook(page, hook);
      assert.ok(await page.isVisible('#order-fieldset'), 'draft order choice shown for order hooks');
      await chooseDraft(page, QUININE);
      await send(page);
      const cards = await shownCards(page);
      assert.deepEqual(cards.map((c) => c.topic).sort(), [...quinine.expectCards].sort(), hook);
      const warning = card(page, 'quinine-warning');
      assert.equal(await warning.getAttribute('data-indicator'), 'critical', `${hook}: quinine card is critical`);
      assert.equal(await warning.evaluate((e) => getComputedStyle(e).borderLeftColor), BANDS.critical);
      assert.match(await warning.locator('button.suggestion').first().textContent(), /Remove the quinine order/);

      const request = await shownRequest(page);
      assert.equal(request.hook, hook);
      const draft = request.context.draftOrders.entry[0].resource;
      assert.equal(request.context.draftOrders.type, 'collection');
      assert.equal(draft.resourceType, 'MedicationRequest');
      assert.equal(draft.subject.reference, `Patient/${request.context.patientId}`);
      if (hook === 'order-select') assert.deepEqual(request.context.selections, [`MedicationRequest/${draft.id}`]);
      else assert.equal(request.context.selections, undefined);

      // The finding's evidence is the draft order, found in the draft orders sent.
      const toggle = warning.locator(`button.evidence__toggle[data-reference="MedicationRequest/${draft.id}"]`);
      await toggle.click();
      assert.equal(await toggle.getAttribute('aria-expanded'), 'true');
      const panel = page.locator(`#${await toggle.getAttribute('aria-controls')}`);
      assert.deepEqual(JSON.parse(await panel.locator('pre').textContent()), draft);
    }
    await chooseDraft(page, STATIN);
    await send(page);
    assert.deepEqual((await shownCards(page)).map((c) => c.topic).sort(), [...statin.expectCards].sort(), 'statin draft');

    // A pasted draft: no id, no subject; the console adds both.
    await chooseHook(page, 'order-select');
    await chooseDraft(page, '__paste');
    await page.fill('#draft-text', JSON.stringify({
      resourceType: 'MedicationRequest', status: 'draft', intent: 'order',
      medicationCodeableConcept: { text: 'Qualaquin (quinine sulfate) 324 mg capsule' },
    }));
    await send(page);
    assert.equal(await card(page, 'quinine-warning').getAttribute('data-indicator'), 'critical', 'pasted quinine draft');
    const pasted = (await shownRequest(page)).context;
    assert.equal(pasted.draftOrders.entry[0].resource.id, 'console-draft-1');
    assert.deepEqual(pasted.selections, ['MedicationRequest/console-draft-1']);

    await chooseHook(page, 'patient-view');
    assert.ok(!(await page.isVisible('#order-fieldset')), 'no draft order for patient-view');
  });
});

test('accepting a suggestion posts feedback that the summary counts', LIMIT, async () => {
  const before = await feedbackCounts('leg-cramps-patient-view', 'dvt-rule-out');
  await onConsole(async (page) => {
    await choosePatient(page, DVT);
    await send(page);
    const dvt = card(page, 'dvt-rule-out');
    // r2: with fewer than 2 chart points neither test is marked recommended;
    // the ultrasound is offered first.
    assert.equal(await dvt.locator('button.suggestion.button--primary').count(), 0);
    const first = dvt.locator('button.suggestion').first();
    const label = (await first.textContent()).replace('Recommended', '').trim();
    assert.match(label, /ultrasound/i);
    await first.click();
    await dvt.locator('.outcome--accepted').waitFor();
    assert.match(await dvt.locator('.card__outcome').textContent(), new RegExp(`Accepted “${label}”.*Feedback stored`));
    // at-most-one: the other suggestion can no longer be taken
    for (const button of await dvt.locator('button.suggestion').all()) assert.ok(await button.isDisabled());
  });
  const after = await feedbackCounts('leg-cramps-patient-view', 'dvt-rule-out');
  assert.equal(after.row.accepted, before.row.accepted + 1, 'accepted went up by one');
  assert.equal(after.row.issued, before.row.issued + 1, 'one more card issued');
});

test('dismissing a card with an override reason and a comment posts overridden feedback', LIMIT, async () => {
  const before = await feedbackCounts('leg-cramps-order-sign', 'quinine-warning');
  const reasonCount = (summary) => summary.overrideReasons
    .filter((r) => r.cardType === 'quinine-warning' && r.code === 'malaria-treatment')
    .reduce((n, r) => n + r.count, 0);
  await onConsole(async (page) => {
    await choosePatient(page, DIALYSIS);
    await chooseHook(page, 'order-sign');
    await chooseDraft(page, QUININE);
    await send(page);
    const warning = card(page, 'quinine-warning');
    const toggle = warning.locator('button.dismiss-toggle');
    await toggle.click();
    assert.equal(await toggle.getAttribute('aria-expanded'), 'true');
    const reasons = await warning.locator('.dismiss__reasons label').allTextContents();
    assert.ok(reasons.some((r) => r.includes('Prescribed to treat malaria')), 'the card\'s override reasons are offered');
    await warning.getByLabel('Prescribed to treat malaria').check();
    await warning.getByLabel('Comment (optional)').fill('Travel clinic: malaria treatment');
    await warning.getByRole('button', { name: 'Send dismissal' }).click();
    await warning.locator('.outcome--overridden').waitFor();
    assert.match(await warning.locator('.card__outcome').textContent(), /Dismissed: Prescribed to treat malaria, “Travel clinic: malaria treatment”/);
    assert.ok(await warning.locator('button.suggestion').first().isDisabled());
  });
  const after = await feedbackCounts('leg-cramps-order-sign', 'quinine-warning');
  assert.equal(after.row.overridden, before.row.overridden + 1, 'overridden went up by one');
  assert.equal(reasonCount(after.summary), reasonCount(before.summary) + 1, 'the override reason was stored');
});

test('a pasted Bundle that is not JSON, or not a Bundle, gives a clear message and sends nothing', LIMIT, async () => {
  await onConsole(async (page) => {
    const posts = [];
    page.on('request', (r) => { if (r.method() === 'POST') posts.push(r.url()); });
    await pasteBundle(page, '{\n  "resourceType": "Bundle",\n  "entry": [ {"resource": \n');
    await send(page);
    const error = page.locator('#error');
    assert.ok(await error.isVisible());
    assert.equal(await error.getAttribute('role'), 'alert');
    assert.match(await error.textContent(), /Not sent: The pasted Bundle is not valid JSON \(it ends too early, at line \d+, column \d+\)/);
    await screenshot(page, 'error-invalid-json.png', false);

    await page.fill('#bundle-text', '{\n  "resourceType": "Bundle",\n  "entry": [,]\n}');
    await send(page);
    assert.match(await error.textContent(), /Not sent: The pasted Bundle is not valid JSON \(line 3, column 13, at “,] }”\)/);

    await page.fill('#bundle-text', JSON.stringify({ resourceType: 'Patient', id: 'p1' }));
    await send(page);
    assert.match(await error.textContent(), /The patient data is a Patient, not a FHIR Bundle/);

    await page.fill('#bundle-text', '');
    await send(page);
    assert.match(await error.textContent(), /The pasted Bundle is empty/);
    assert.deepEqual(posts, [], 'nothing was sent');
    assert.equal(await page.textContent('#request-json'), 'Nothing sent yet.');
  });
});

test('an uploaded Bundle is sent, an edited copy of a sample too, and one without a Patient still goes', LIMIT, async () => {
  const bundle = await getJson(`/examples/${DIALYSIS}`);
  await onConsole(async (page) => {
    await choosePatient(page, '__paste');
    await page.setInputFiles('#bundle-file', { name: 'patient.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(bundle)) });
    await page.waitForFunction(() => document.getElementById('bundle-text').value.length > 0);
    assert.deepEqual(JSON.parse(await page.inputValue('#bundle-text')), bundle);
    await send(page);
    assert.deepEqual((await shownCards(page)).map((c) => c.topic), ['risk-factors']);

    // "Edit a copy": the sample lands in the editor, ready to change.
    await choosePatient(page, DVT);
    await page.click('#edit-sample');
    assert.equal(await page.inputValue('#patient-select'), '__paste');
    const copy = JSON.parse(await page.inputValue('#bundle-text'));
    assert.deepEqual(copy, await getJson(`/examples/${DVT}`));

    // No Patient: the console says so, sends anyway, and shows what the service answered.
    const noPatient = { ...bundle, entry: bundle.entry.filter((e) => e.resource.resourceType !== 'Patient') };
    await page.fill('#bundle-text', JSON.stringify(noPatient));
    await page.waitForFunction(() => /no Patient resource/.test(document.getElementById('patient-summary').textContent));
    await send(page);
    const request = await shownRequest(page);
    assert.equal(request.prefetch.patient, null);
    const patientId = bundle.entry.find((e) => e.resource.resourceType === 'Patient').resource.id;
    assert.equal(request.context.patientId, patientId, 'the patient the resources name');
    assert.match(await page.textContent('#cards .exchange__line'), /HTTP \d{3}/);
  });
});

test('a Bundle the API rejects shows the status and every OperationOutcome issue', LIMIT, async () => {
  const bundle = await getJson(`/examples/${DIALYSIS}`);
  for (const { resource } of bundle.entry) {
    if (resource.resourceType === 'Patient') resource.id = 'not a valid id!';
    else if (resource.subject) resource.subject.reference = 'Patient/not a valid id!';
  }
  await onConsole(async (page) => {
    await pasteBundle(page, bundle);
    await send(page);
    const error = page.locator('#error');
    await error.waitFor();
    const text = await error.textContent();
    assert.match(text, /The service refused the request: HTTP 400 Bad Request/);
    const outcome = await shownResponse(page);
    assert.equal(outcome.resourceType, 'OperationOutcome');
    assert.ok(outcome.issue.length > 0);
    const issues = await error.locator('.issue').allTextContents();
    assert.equal(issues.length, outcome.issue.length, 'one line per issue');
    for (const [index, issue] of outcome.issue.entries()) {
      assert.ok(issues[index].includes(issue.diagnostics), `diagnostics shown: ${issue.diagnostics}`);
      for (const pointer of issue.expression || []) assert.ok(issues[index].includes(pointer), `expression shown: ${pointer}`);
    }
    assert.ok(text.includes('/context/patientId'));
    assert.match(await page.textContent('#status'), /^$/);
    await screenshot(page, 'error-operation-outcome.png', false);
  });
});

test('finding evidence expands to the resource sent in the Bundle', LIMIT, async () => {
  await onConsole(async (page) => {
    await choosePatient(page, DIALYSIS);
    await send(page);
    const request = await shownRequest(page);
    const risk = card(page, 'risk-factors');
    const finding = risk.locator('.finding[data-finding="kidney-disease"]');
    assert.match(await finding.textContent(), /Chronic kidney disease/);
    const toggle = finding.locator('button.evidence__toggle');
    const reference = await toggle.getAttribute('data-reference');
    const [type, id] = reference.split('/');
    const panel = page.locator(`#${await toggle.getAttribute('aria-controls')}`);
    assert.equal(await toggle.getAttribute('aria-expanded'), 'false');
    assert.ok(!(await panel.isVisible()));
    await toggle.focus();
    await page.keyboard.press('Enter');
    assert.equal(await toggle.getAttribute('aria-expanded'), 'true');
    assert.ok(await panel.isVisible());
    const sent = request.prefetch.conditions.entry.map((e) => e.resource).find((r) => r.resourceType === type && r.id === id);
    assert.ok(sent, `${reference} was sent`);
    assert.deepEqual(JSON.parse(await panel.locator('pre').textContent()), sent);
    await page.keyboard.press('Enter');
    assert.equal(await toggle.getAttribute('aria-expanded'), 'false');
    assert.ok(!(await panel.isVisible()));
    // The Patient is evidence too (age).
    const age = risk.locator('.finding[data-finding="older-age"] button.evidence__toggle');
    await age.click();
    const agePanel = page.locator(`#${await age.getAttribute('aria-controls')}`);
    assert.equal(JSON.parse(await agePanel.locator('pre').textContent()).resourceType, 'Patient');
  });
});

test('markup in the record or in a card\'s Markdown renders as inert text', LIMIT, async () => {
  const hostile = '<img src=x onerror=alert(1)> [x](javascript:alert(1)) <script>alert(2)</script> **b** _i_';
  // A Condition that is evidence of a risk factor of the sample: its text goes into the card's detail.
  const bundle = await getJson(`/examples/${DIALYSIS}`);
  const probe = await postJson('/cds-services/leg-cramps-patient-view',
    buildRequest('patient-view', analyseBundle(bundle), [], randomUUID()));
  // The card line shows a finding's first evidence (issue 19): pick one led by a Condition.
  const finding = probe.cards.find((c) => c.source.topic.code === 'risk-factors').extension['cramp-cds'].findings
    .find((f) => f.code !== 'leg-cramps' && f.evidence[0].startsWith('Condition/'));
  assert.ok(finding, 'a risk factor found from a Condition');
  const conditionId = finding.evidence[0].slice('Condition/'.length);
  const condition = bundle.entry.map((e) => e.resource).find((r) => r.resourceType === 'Condition' && r.id === conditionId);
  condition.code.text = hostile;
  await onConsole(async (page) => {
    await pasteBundle(page, bundle);
    await send(page);
    const risk = card(page, 'risk-factors');
    const item = risk.locator('.card__detail li', { hasText: 'onerror' });
    assert.equal(await item.count(), 1);
    assert.ok((await item.textContent()).includes(hostile), 'the text is shown literally');
    assert.equal(await item.locator('strong').count(), 1, 'only the engine\'s own bold label');
    assert.equal(await item.locator('em, a, img, script').count(), 0);
    assert.equal(await page.locator('#cards img:not(.card__icon), #cards script, #cards iframe').count(), 0);
    const hrefs = await page.$$eval('#cards a', (links) => links.map((a) => a.getAttribute('href')));
    assert.ok(hrefs.length > 0 && hrefs.every((href) => /^https?:\/\//.test(href)), `only http(s) links: ${hrefs}`);
    const evidence = risk.locator(`.finding[data-finding="${finding.code}"] .evidence__description`, { hasText: 'onerror' });
    assert.ok((await evidence.textContent()).includes(hostile), 'the evidence line shows the text literally');

    // The renderer itself, on raw (unescaped) Markdown, in this browser's DOM.
    const rendered = await page.evaluate(async () => {
      const { renderMarkdown } = await import('/console/markdown.js');
      const box = document.createElement('div');
      box.append(renderMarkdown([
        '<img src=x onerror=alert(1)> and <script>alert(2)</script>',
        '',
        '[x](javascript:alert(3)) [y](https://example.org/ok) [z](data:text/html,hi) **<b>bold</b>** _it_ \\*not bold\\*',
        '- <iframe src="javascript:alert(4)"></iframe>',
        '- [**bold link**](http://example.org/a)',
      ].join('\n')));
      document.body.append(box);
      await new Promise((resolve) => setTimeout(resolve, 200));
      const result = {
        tags: [...new Set([...box.querySelectorAll('*')].map((e) => e.tagName))].sort(),
        hrefs: [...box.querySelectorAll('a')].map((a) => a.getAttribute('href')),
        text: box.textContent,
      };
      box.remove();
      return result;
    });
    assert.deepEqual(rendered.tags, ['A', 'EM', 'LI', 'P', 'STRONG', 'UL']);
    assert.deepEqual(rendered.hrefs, ['https://example.org/ok', 'http://example.org/a']);
    for (const literal of ['<img src=x onerror=alert(1)>', '<script>alert(2)</script>', '[x](javascript:alert(3))', '[z](data:text/html,hi)', '<b>bold</b>', '*not bold*', '<iframe src="javascript:alert(4)"></iframe>']) {
      assert.ok(rendered.text.includes(literal), `literal text: ${literal}`);
    }
  });
});

test('keyboard only: Tab to the patient picker, choose, send, and accept a suggestion with Enter', LIMIT, async () => {
  const before = await feedbackCounts('leg-cramps-patient-view', 'dvt-rule-out');
  await onConsole(async (page) => {
    const focused = () => page.evaluate(() => {
      const e = document.activeElement;
      const style = getComputedStyle(e);
      return { id: e.id, tag: e.tagName, classes: [...e.classList], outline: `${style.outlineStyle} ${style.outlineWidth}` };
    });
    const tabTo = async (matches, limit, what) => {
      for (let i = 0; i < limit; i += 1) {
        await page.keyboard.press('Tab');
        const now = await focused();
        if (matches(now)) return now;
      }
      assert.fail(`${what} not reached with ${limit} Tab presses`);
    };

    const picker = await tabTo((f) => f.id === 'patient-select', 10, 'patient picker');
    assert.match(picker.outline, /^solid [1-9]/, 'visible focus on the picker');
    for (let i = 0; i < examples.patients.length && (await page.inputValue('#patient-select')) !== DVT; i += 1) {
      await page.keyboard.press('ArrowDown');
    }
    assert.equal(await page.inputValue('#patient-select'), DVT);
    await page.waitForFunction(() => /Patient\//.test(document.getElementById('patient-summary').textContent));

    const sendButton = await tabTo((f) => f.id === 'send', 12, 'send button');
    assert.match(sendButton.outline, /^solid [1-9]/);
    await send(page, () => page.keyboard.press('Enter'));
    assert.deepEqual((await shownCards(page)).map((c) => c.topic), ['dvt-rule-out']);
    // The live region is filled 20 ms after it is emptied (so that screen
    // readers announce a repeated text): wait for it, do not read at once.
    await page.waitForFunction(() => /1 card from leg-cramps-patient-view/.test(document.getElementById('status').textContent));

    const suggestion = await tabTo((f) => f.classes.includes('suggestion'), 80, 'a suggestion button');
    assert.match(suggestion.outline, /^solid [1-9]/);
    await page.keyboard.press('Enter');
    await page.locator('.outcome--accepted').waitFor();
    assert.ok(await page.evaluate(() => document.activeElement.classList.contains('card__outcome')), 'focus moves to the outcome');
    await page.waitForFunction(() => /Feedback stored/.test(document.getElementById('status').textContent));
  });
  const after = await feedbackCounts('leg-cramps-patient-view', 'dvt-rule-out');
  assert.equal(after.row.accepted, before.row.accepted + 1);
});

test('reads well on a laptop (1366x768) and a narrow screen (375x800)', LIMIT, async () => {
  for (const [name, viewport] of [['laptop', { width: 1366, height: 768 }], ['narrow', { width: 375, height: 800 }]]) {
    await onConsole(async (page) => {
      await choosePatient(page, 'dvt-pregnancy.json');
      await send(page);
      assert.equal((await shownCards(page)).length, 2);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `${name}: no sideways scrolling (${overflow}px too wide)`);
      const form = await page.locator('.setup').boundingBox();
      const first = await page.locator('#cards .card').first().boundingBox();
      assert.ok(first.x + first.width <= viewport.width, `${name}: card fits`);
      if (name === 'laptop') {
        assert.ok(first.x >= form.x + form.width, 'laptop: cards beside the form');
        assert.ok(await page.locator('#send').boundingBox().then((b) => b.y + b.height <= viewport.height), 'laptop: send button on the first screen');
      } else {
        assert.ok(first.y >= form.y + form.height, 'narrow: cards below the form');
        assert.ok(first.width >= viewport.width - 60, 'narrow: cards use the width');
        const buttons = await page.locator('#cards button.suggestion').all();
        for (const button of buttons) {
          const box = await button.boundingBox();
          assert.ok(box.height >= 40 && box.x + box.width <= viewport.width, 'narrow: touch-size suggestion buttons inside the screen');
        }
      }
      // The laptop shot shows form and cards side by side; the narrow one where sending left it: at the cards.
      if (name === 'laptop') await page.evaluate(() => window.scrollTo(0, 0));
      await screenshot(page, `console-${name}.png`, false);
      await screenshot(page, `console-${name}-full.png`, true);
    }, viewport);
  }
});
