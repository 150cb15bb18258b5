// Shared helpers of the console's browser tests: Debian's chromium driven by
// playwright-core, against the server named by CRAMP_CDS_URL (started by
// the caller, never from here).

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));

export const BASE = (process.env.CRAMP_CDS_URL || '').replace(/\/+$/, '');
export const ARTIFACTS = path.resolve(process.env.CRAMP_CDS_ARTIFACTS || path.join(here, 'artifacts'));
export const CHROMIUM = process.env.CRAMP_CDS_CHROMIUM || '/usr/bin/chromium';

const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-gpu',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

export function requireServer() {
  if (!BASE) {
    throw new Error('CRAMP_CDS_URL is not set: start the server (cargo test runs these tests with it) and set CRAMP_CDS_URL=http://127.0.0.1:PORT');
  }
}

export async function launch() {
  requireServer();
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 20_000 });
}

/**
 * Opens the console in a fresh context. `problems` collects what must never
 * happen: page errors, Content Security Policy violations, dialogs (an
 * alert() from injected markup) and requests to any other origin.
 */
export async function openConsole(browser, viewport = { width: 1366, height: 768 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  const problems = [];
  const origin = new URL(BASE).origin;
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    const text = message.text();
    if (/Content Security Policy|Refused to/i.test(text)) problems.push(`CSP: ${text}`);
  });
  page.on('dialog', (dialog) => {
    problems.push(`dialog: ${dialog.type()} ${dialog.message()}`);
    dialog.dismiss().catch(() => {});
  });
  page.on('request', (request) => {
    const url = request.url();
    if (!url.startsWith(origin) && !url.startsWith('data:')) problems.push(`request to another origin: ${url}`);
  });
  await page.goto(`${BASE}/`);
  await page.waitForSelector('body[data-ready="true"]');
  return { page, problems, close: () => context.close() };
}

export async function choosePatient(page, file) {
  await page.selectOption('#patient-select', file);
  if (file !== '__paste') {
    await page.waitForFunction(() => !/Loading/.test(document.getElementById('patient-summary').textContent));
  }
}

export async function chooseHook(page, hook) {
  await page.check(`input[name="hook"][value="${hook}"]`);
}

export async function chooseDraft(page, value) {
  await page.selectOption('#draft-select', value);
}

export async function pasteBundle(page, document) {
  await choosePatient(page, '__paste');
  await page.fill('#bundle-text', typeof document === 'string' ? document : JSON.stringify(document));
}

/** Clicks Send and waits until the console has shown the outcome. */
export async function send(page, trigger = () => page.click('#send')) {
  const runs = await page.evaluate(() => Number(document.body.dataset.runs || 0));
  await trigger();
  await page.waitForFunction((n) => Number(document.body.dataset.runs || 0) > n, runs);
}

/** The cards shown: topic, indicator and summary of each. */
export async function shownCards(page) {
  return page.$$eval('#cards .card', (cards) => cards.map((card) => ({
    topic: card.dataset.topic,
    indicator: card.dataset.indicator,
    uuid: card.dataset.cardUuid,
    summary: card.querySelector('.card__summary').textContent,
  })));
}

export async function getJson(pathname) {
  const response = await fetch(`${BASE}${pathname}`);
  if (!response.ok) throw new Error(`GET ${pathname}: HTTP ${response.status} ${await response.text()}`);
  return response.json();
}

export async function postJson(pathname, body) {
  const response = await fetch(`${BASE}${pathname}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  if (!response.ok) throw new Error(`POST ${pathname}: HTTP ${response.status} ${await response.text()}`);
  return response.json();
}

/** One card type's row of GET /cds-services/{id}/feedback/summary (zeros when absent). */
export async function feedbackCounts(serviceId, cardType) {
  const summary = await getJson(`/cds-services/${serviceId}/feedback/summary`);
  const row = summary.cardTypes.find((r) => r.cardType === cardType);
  return { row: row || { issued: 0, accepted: 0, overridden: 0, withoutFeedback: 0 }, summary };
}

export async function screenshot(page, name, fullPage = true) {
  const file = path.join(ARTIFACTS, name);
  await page.screenshot({ path: file, fullPage });
  return file;
}
