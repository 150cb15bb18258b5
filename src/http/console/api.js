// Calls to the service (same origin). Every answer is read whole: status,
// status text, the body as JSON when it parses (else as text), and timing.

import { describeProblem } from './fhir.js';

const REASONS = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed',
  409: 'Conflict', 412: 'Precondition Failed', 413: 'Payload Too Large', 415: 'Unsupported Media Type',
  422: 'Unprocessable Entity', 429: 'Too Many Requests', 500: 'Internal Server Error', 502: 'Bad Gateway',
  503: 'Service Unavailable', 504: 'Gateway Timeout',
};

/**
 * Sends a request; never throws. Returns {ok, status, statusText, body,
 * text, ms, problem}: `problem` (see describeProblem) is set for every
 * non-2xx answer and for a network failure (status 0).
 */
export async function call(method, path, body) {
  const started = performance.now();
  const init = { method, headers: { Accept: 'application/json' }, credentials: 'same-origin' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    const ms = Math.round(performance.now() - started);
    const problem = describeProblem(0, 'No answer', `Could not reach the service: ${error && error.message ? error.message : error}`);
    return { ok: false, status: 0, statusText: 'No answer', body: undefined, text: '', ms, problem };
  }
  const text = await response.text().catch(() => '');
  const ms = Math.round(performance.now() - started);
  let parsed;
  if (text !== '') {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
  }
  const statusText = response.statusText || REASONS[response.status] || '';
  const result = { ok: response.ok, status: response.status, statusText, body: parsed, text, ms, problem: null };
  if (!response.ok) {
    result.problem = describeProblem(response.status, statusText, parsed !== undefined ? parsed : text);
  }
  return result;
}

/** GET a JSON document; throws an Error carrying `problem` when it fails. */
export async function getJson(path) {
  const result = await call('GET', path);
  if (!result.ok || result.body === undefined) {
    const error = new Error(`GET ${path} failed`);
    error.problem = result.problem || describeProblem(result.status, result.statusText, 'The answer is not JSON.');
    throw error;
  }
  return result.body;
}
