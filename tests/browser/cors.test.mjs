// CORS in a real browser: a page of another origin the service allows (its
// own other name: localhost for 127.0.0.1) calls a hook with X-Request-Id,
// which needs a preflight; the answer and its X-Request-Id reach the script.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { BASE, launch } from './helpers.mjs';

const LIMIT = { timeout: 30_000 };
let browser;

before(async () => {
  browser = await launch();
});

after(async () => {
  if (browser) await browser.close();
});

/** The same server under its other loopback name: another origin. */
function otherOrigin() {
  const url = new URL(BASE);
  url.hostname = url.hostname === 'localhost' ? '127.0.0.1' : 'localhost';
  return url.origin;
}

test('a cross-origin hook call with X-Request-Id passes its preflight and reads the id back', LIMIT, async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  try {
    await page.goto(`${otherOrigin()}/healthz`);
    const request = {
      hook: 'patient-view',
      hookInstance: randomUUID(),
      context: { userId: 'Practitioner/1', patientId: 'p1' },
      prefetch: { patient: { resourceType: 'Patient', id: 'p1' }, conditions: null, medicationRequests: null, observations: null },
    };
    const result = await page.evaluate(async ({ target, body }) => {
      const response = await fetch(`${target}/cds-services/leg-cramps-patient-view`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-Request-Id': 'browser-cors-1' },
        body: JSON.stringify(body),
      });
      return { status: response.status, id: response.headers.get('X-Request-Id'), cards: (await response.json()).cards };
    }, { target: new URL(BASE).origin, body: request });
    assert.equal(result.status, 200);
    assert.equal(result.id, 'browser-cors-1', 'X-Request-Id is exposed to the script');
    assert.ok(Array.isArray(result.cards));
  } finally {
    await context.close();
  }
});
