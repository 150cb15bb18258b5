// The guidance pages and the patient handout in a real browser: each renders
// with no page error and no Content Security Policy violation, loads nothing
// from another origin, and the handout prints on one A4 or Letter page. The
// console opens a card's links. Screenshots go to CRAMP_CDS_ARTIFACTS; with
// CRAMP_CDS_DOCS_SCREENSHOTS=DIR (tools/docs-screenshots.sh) the README's
// pictures are written there too.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { BASE, launch, openConsole, choosePatient, send, screenshot, ARTIFACTS } from './helpers.mjs';

const LIMIT = { timeout: 30_000 };
const TOPICS = ['risk-factors', 'medication-culprits', 'dvt-rule-out', 'quinine-warning'];
const DOCS = process.env.CRAMP_CDS_DOCS_SCREENSHOTS ? path.resolve(process.env.CRAMP_CDS_DOCS_SCREENSHOTS) : null;

let browser;

before(async () => {
  browser = await launch();
});

after(async () => {
  if (browser) await browser.close();
});

/** A fresh page that records page errors, CSP violations and requests to other origins. */
async function watchedPage(context) {
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  const problems = [];
  watch(page, problems);
  return { page, problems };
}

function watch(page, problems) {
  const origin = new URL(BASE).origin;
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    const text = message.text();
    if (message.type() === 'error' || /Content Security Policy|Refused to/i.test(text)) problems.push(`console ${message.type()}: ${text}`);
  });
  page.on('request', (request) => {
    if (!request.url().startsWith(origin)) problems.push(`request to another origin: ${request.url()}`);
  });
}

/** Pages in a PDF: its page objects (not the /Pages tree nodes). */
function pdfPages(buffer) {
  return (buffer.toString('latin1').match(/\/Type\s*\/Page(?![s\w])/g) || []).length;
}

test('every guidance page renders its sections with no error and no CSP violation', LIMIT, async () => {
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  try {
    const { page, problems } = await watchedPage(context);
    for (const topic of TOPICS) {
      const response = await page.goto(`${BASE}/guidance/${topic}`);
      assert.equal(response.status(), 200, topic);
      const headings = await page.$$eval('h2', (list) => list.map((h) => h.textContent));
      for (const needed of ['What triggers this card', 'Findings and their windows', 'Next steps', 'Red flags', 'References']) {
        assert.ok(headings.includes(needed), `${topic}: ${needed}`);
      }
      // The inline stylesheet applied (its hash is in the policy): the red flags box is styled.
      const border = await page.$eval('.red-flags', (el) => getComputedStyle(el).borderLeftStyle);
      assert.equal(border, 'solid', `${topic}: styles applied`);
      assert.ok(await page.locator('dl.findings dt').count() > 0, `${topic}: findings listed`);
      // Citations jump to their reference.
      const cite = page.locator('a.cite').first();
      const target = (await cite.getAttribute('href')).slice(1);
      assert.equal(await page.locator(`[id="${target}"]`).count(), 1, `${topic}: ${target}`);
      await screenshot(page, `guidance-${topic}.png`);
    }
    assert.deepEqual(problems, [], 'page errors, CSP violations or foreign requests');
  } finally {
    await context.close();
  }
});

test('the handout renders and prints on one A4 or Letter page', LIMIT, async () => {
  const context = await browser.newContext({ viewport: { width: 900, height: 1000 } });
  try {
    const { page, problems } = await watchedPage(context);
    const response = await page.goto(`${BASE}/handouts/leg-cramps`);
    assert.equal(response.status(), 200);
    const text = await page.textContent('main');
    for (const needed of ['What is a leg cramp?', 'During a cramp', 'Calf stretch', 'Thigh stretch', 'fluids', 'ice', 'Quinine is not a treatment', 'swelling']) {
      assert.ok(text.includes(needed), needed);
    }
    assert.ok((await page.textContent('footer')).includes('CareNotes'), 'sources at the foot');
    await screenshot(page, 'handout-screen.png');

    // About the printable width of an A4 or Letter page at 96 dpi.
    await page.setViewportSize({ width: 720, height: 1000 });
    await page.emulateMedia({ media: 'print' });
    const printSize = await page.$eval('h1', (h) => parseFloat(getComputedStyle(h).fontSize));
    assert.ok(Math.abs(printSize - (16 * 96) / 72) < 0.01, `print styles apply (h1 ${printSize}px)`);
    const printed = await screenshot(page, 'handout-print.png');
    for (const format of ['A4', 'Letter']) {
      const pdf = await page.pdf({ format, printBackground: false, preferCSSPageSize: true });
      fs.writeFileSync(path.join(ARTIFACTS, `handout-${format}.pdf`), pdf);
      assert.equal(pdfPages(pdf), 1, `the handout prints on one ${format} page`);
    }
    if (DOCS) {
      fs.mkdirSync(DOCS, { recursive: true });
      fs.copyFileSync(printed, path.join(DOCS, 'handout-print.png'));
    }
    assert.deepEqual(problems, [], 'page errors, CSP violations or foreign requests');
  } finally {
    await context.close();
  }
});

test('the console shows a card\'s links and opens its guidance page and the handout', LIMIT, async () => {
  const session = await openConsole(browser, { width: 1280, height: 900 });
  const { page, problems } = session;
  try {
    await choosePatient(page, 'cramps-ckd-low-potassium.json');
    await send(page);
    const risk = page.locator('#cards .card[data-topic="risk-factors"]');
    const links = risk.locator('.card__links a');
    const labels = await links.evaluateAll((list) => list.map((a) => a.firstChild.textContent));
    assert.deepEqual(labels, ['Why this card', 'Patient handout: leg cramps']);
    for (const topic of await page.$$eval('#cards .card', (cards) => cards.map((c) => c.dataset.topic))) {
      const why = page.locator(`#cards .card[data-topic="${topic}"] .card__links a`, { hasText: 'Why this card' });
      assert.equal(await why.getAttribute('href'), `${BASE}/guidance/${topic}`, topic);
    }
    if (DOCS) {
      fs.mkdirSync(DOCS, { recursive: true });
      await risk.screenshot({ path: path.join(DOCS, 'card-in-console.png') });
    }
    await risk.screenshot({ path: path.join(ARTIFACTS, 'card-in-console.png') });

    for (const [label, expected] of [['Why this card', `${BASE}/guidance/risk-factors`], ['Patient handout: leg cramps', `${BASE}/handouts/leg-cramps`]]) {
      const [opened] = await Promise.all([
        page.context().waitForEvent('page'),
        risk.locator('.card__links a', { hasText: label }).click(),
      ]);
      watch(opened, problems);
      await opened.waitForLoadState('load');
      assert.equal(opened.url(), expected, label);
      assert.ok((await opened.textContent('h1')).length > 0, `${label}: a page with a title`);
      await opened.close();
    }
    assert.deepEqual(problems, [], 'page errors, CSP violations, dialogs or foreign requests');
  } finally {
    await session.close();
  }
});
