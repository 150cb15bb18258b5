// CDS cards drawn the way EHRs draw them: an indicator colour band and icon,
// the summary first, the source in small print, the detail (safe Markdown),
// suggestion buttons, links, and accept / dismiss with real feedback. The
// console adds what an EHR would not: each finding with its evidence, every
// reference expandable to the resource that was sent.

import { renderMarkdown } from './markdown.js';
import { describeResource } from './fhir.js';
import { call } from './api.js';
import { h, uid, replace, externalLink, json } from './dom.js';

const INDICATORS = {
  info: { label: 'Info', icon: '/console/icon-info.svg' },
  warning: { label: 'Warning', icon: '/console/icon-warning.svg' },
  critical: { label: 'Critical', icon: '/console/icon-critical.svg' },
};

const HINTS = {
  0: 'The page could not reach the service. Is it still running?',
  401: 'Authentication is on: the service wants the signed JWT an EHR sends with each call, which this console cannot make.',
  412: 'A required prefetch key is missing and the service could not fetch it.',
  413: 'The request is larger than the service accepts.',
  415: 'The service accepts only application/json or application/fhir+json.',
  503: 'The service\'s database is unreachable: hooks still answer, feedback cannot be stored.',
};

/** An answer that failed: its status, and each OperationOutcome issue with its diagnostics and expression. */
export function renderProblem(title, problem) {
  const status = problem.status ? `HTTP ${problem.status}${problem.statusText ? ` ${problem.statusText}` : ''}` : problem.statusText;
  const issues = problem.issues.map((issue) => h('li', { class: 'issue' },
    h('span', { class: `issue__severity issue__severity--${issue.severity || 'error'}` }, issue.severity || 'error'),
    issue.code ? h('span', { class: 'issue__code' }, issue.code) : null,
    h('span', { class: 'issue__diagnostics' }, issue.diagnostics || '(no diagnostics)'),
    issue.expression.length > 0
      ? h('span', { class: 'issue__expression' }, 'at ', issue.expression.map((e, i) => [i > 0 ? ', ' : '', h('code', {}, e)]))
      : null));
  return h('div', { class: 'problem__body' },
    h('p', { class: 'problem__title' }, h('strong', {}, title), ` ${status}`),
    issues.length > 0 ? h('ul', { class: 'problem__issues' }, issues) : null,
    problem.text ? h('p', { class: 'problem__text' }, problem.text) : null,
    HINTS[problem.status] ? h('p', { class: 'problem__hint' }, HINTS[problem.status]) : null);
}

/** A plain-text version of a problem for the live region. */
export function problemText(title, problem) {
  const status = problem.status ? `HTTP ${problem.status} ${problem.statusText}`.trim() : problem.statusText;
  const issues = problem.issues.map((i) => `${i.diagnostics}${i.expression.length ? ` (at ${i.expression.join(', ')})` : ''}`);
  return [`${title} ${status}.`, ...issues, problem.text].filter(Boolean).join(' ');
}

/**
 * One card. `context`: {serviceId, resources (Map "Type/id" -> resource),
 * announce(text)}.
 */
export function renderCard(card, context) {
  const indicator = INDICATORS[card.indicator] || INDICATORS.info;
  const summaryId = uid('card-summary');
  const topic = card.source && card.source.topic;
  const article = h('article', {
    class: `card card--${INDICATORS[card.indicator] ? card.indicator : 'info'}`,
    'aria-labelledby': summaryId,
    'data-card-uuid': card.uuid,
    'data-topic': topic && topic.code,
    'data-indicator': card.indicator,
  });

  article.append(h('header', { class: 'card__head' },
    h('img', { class: 'card__icon', src: indicator.icon, alt: '', width: 28, height: 28 }),
    h('div', { class: 'card__heading' },
      h('span', { class: 'card__indicator' }, indicator.label),
      h('h3', { class: 'card__summary', id: summaryId }, card.summary || '(no summary)'))));

  if (card.source) {
    const label = card.source.label || 'Unknown source';
    article.append(h('p', { class: 'card__source' }, 'Source: ',
      card.source.url ? externalLink(card.source.url, label) : label,
      topic && topic.display ? h('span', { class: 'card__topic' }, ` · ${topic.display}`) : null));
  }

  if (card.detail) {
    const detail = h('div', { class: 'card__detail markdown' });
    detail.append(renderMarkdown(card.detail));
    article.append(detail);
  }

  // Links right under the detail, as buttons, the way EHRs offer them
  // ("Why this card", the patient handout): each opens in a new tab.
  if (Array.isArray(card.links) && card.links.length > 0) {
    article.append(h('nav', { class: 'card__links', 'aria-label': 'Links' },
      h('ul', {}, card.links.map((link) => h('li', {},
        externalLink(link.url, link.label || link.url, { class: 'button button--quiet card__link' }))))));
  }

  const findings = card.extension && card.extension['cramp-cds'] && card.extension['cramp-cds'].findings;
  if (Array.isArray(findings) && findings.length > 0) {
    article.append(renderFindings(findings, context.resources));
  }

  article.append(renderActions(card, context));
  return article;
}

function renderFindings(findings, resources) {
  const list = h('ul', { class: 'findings' });
  for (const finding of findings) {
    const evidence = Array.isArray(finding.evidence) ? finding.evidence : [];
    // Active orders over 13 months old (clinical-rules.md §3).
    const outdated = new Set(Array.isArray(finding.possiblyOutdated) ? finding.possiblyOutdated : []);
    list.append(h('li', { class: 'finding', 'data-finding': finding.code },
      h('div', { class: 'finding__head' },
        h('span', { class: 'finding__display' }, finding.display || finding.code),
        finding.category ? h('span', { class: 'tag' }, finding.category) : null,
        h('code', { class: 'finding__code' }, finding.code)),
      evidence.length > 0
        ? h('ul', { class: 'evidence', 'aria-label': `Evidence for ${finding.display || finding.code}` },
          evidence.map((reference) => renderEvidence(reference, resources, outdated.has(reference))))
        : h('p', { class: 'hint' }, 'No evidence listed.')));
  }
  return h('section', { class: 'card__findings' },
    h('h4', { class: 'card__subhead' }, `Findings and evidence (${findings.length})`),
    list);
}

function renderEvidence(reference, resources, outdated) {
  const resource = resources.get(reference);
  const panelId = uid('evidence');
  const panel = h('div', { class: 'evidence__resource', id: panelId, hidden: true },
    resource
      ? h('pre', { class: 'json', tabindex: 0, 'aria-label': `${reference} as sent` }, json(resource))
      : h('p', { class: 'hint' }, `${reference} is not in the Bundle that was sent (nor in the draft orders).`));
  const button = h('button', {
    type: 'button',
    class: 'evidence__toggle',
    'aria-expanded': 'false',
    'aria-controls': panelId,
    'data-reference': reference,
  }, h('span', { class: 'evidence__chevron', 'aria-hidden': 'true' }), h('span', { class: 'evidence__reference' }, reference));
  button.addEventListener('click', () => {
    const open = button.getAttribute('aria-expanded') !== 'true';
    button.setAttribute('aria-expanded', String(open));
    panel.hidden = !open;
  });
  const description = resource ? describeResource(resource) : 'not in the Bundle sent';
  return h('li', { class: 'evidence__item' },
    button,
    description ? h('span', { class: 'evidence__description' }, description) : null,
    outdated ? h('span', { class: 'tag', title: 'Active, but ordered over 13 months ago' }, 'possibly outdated') : null,
    panel);
}

function renderActions(card, context) {
  const suggestions = Array.isArray(card.suggestions) ? card.suggestions : [];
  const overrideReasons = Array.isArray(card.overrideReasons) ? card.overrideReasons : [];
  const outcome = h('div', { class: 'card__outcome' });
  const buttons = [];
  const dismissFormId = uid('dismiss');

  const lock = () => buttons.forEach((b) => { b.disabled = true; });
  const unlock = () => buttons.forEach((b) => { b.disabled = false; });

  const send = async (item, doneText) => {
    lock();
    replace(outcome, h('p', { class: 'outcome outcome--pending' }, 'Sending feedback…'));
    const body = { feedback: [{ card: card.uuid, ...item, outcomeTimestamp: new Date().toISOString() }] };
    const result = await call('POST', `/cds-services/${encodeURIComponent(context.serviceId)}/feedback`, body);
    if (result.ok) {
      replace(outcome, h('p', { class: `outcome outcome--${item.outcome}` },
        h('span', { class: 'outcome__mark', 'aria-hidden': 'true' }, item.outcome === 'accepted' ? '✓' : '✕'), ' ', doneText,
        h('span', { class: 'outcome__note' }, ` Feedback stored (HTTP ${result.status}).`)));
      article().classList.add(`card--${item.outcome}`);
      outcome.setAttribute('tabindex', '-1');
      outcome.focus();
      context.announce(`${doneText} Feedback stored.`);
      return true;
    }
    unlock();
    replace(outcome, h('div', { class: 'outcome outcome--error' }, renderProblem('Feedback was not stored:', result.problem)));
    context.announce(problemText('Feedback was not stored:', result.problem));
    return false;
  };
  const article = () => outcome.closest('.card');

  const suggestionList = h('ul', { class: 'suggestions', 'aria-label': 'Suggestions' });
  for (const suggestion of suggestions) {
    const descriptions = (Array.isArray(suggestion.actions) ? suggestion.actions : [])
      .map((action) => action.description).filter(Boolean);
    const descriptionId = uid('suggestion-description');
    const button = h('button', {
      type: 'button',
      class: `button suggestion ${suggestion.isRecommended ? 'button--primary' : ''}`,
      'data-suggestion-uuid': suggestion.uuid,
      'aria-describedby': descriptions.length > 0 ? descriptionId : null,
    }, suggestion.label || 'Accept', suggestion.isRecommended ? h('span', { class: 'badge' }, 'Recommended') : null);
    button.addEventListener('click', async () => {
      const done = `Accepted “${suggestion.label}”.${descriptions.length ? ` The EHR would now: ${descriptions.join('; ')}.` : ''}`;
      if (await send({ outcome: 'accepted', acceptedSuggestions: [{ id: suggestion.uuid }] }, done)) {
        button.classList.add('suggestion--taken');
      }
    });
    buttons.push(button);
    suggestionList.append(h('li', { class: 'suggestions__item' }, button,
      descriptions.length > 0 ? h('span', { class: 'suggestions__description', id: descriptionId }, descriptions.join('; ')) : null));
  }

  // Dismiss: an inline form with the card's override reasons and a comment.
  const reasonName = uid('reason');
  const commentId = uid('comment');
  const reasonInputs = overrideReasons.map((reason, index) => {
    const input = h('input', { type: 'radio', name: reasonName, value: String(index) });
    return { input, reason, label: h('label', { class: 'choice' }, input, ' ', reason.display || reason.code) };
  });
  const noReason = h('input', { type: 'radio', name: reasonName, value: '', checked: true });
  const comment = h('input', { type: 'text', id: commentId, class: 'text-input', autocomplete: 'off', maxlength: 500 });
  const submitDismiss = h('button', { type: 'submit', class: 'button button--danger' }, 'Send dismissal');
  const cancel = h('button', { type: 'button', class: 'button button--quiet' }, 'Cancel');
  const form = h('form', { class: 'dismiss', id: dismissFormId, hidden: true, 'aria-label': `Dismiss: ${card.summary || 'card'}` },
    overrideReasons.length > 0
      ? h('fieldset', { class: 'dismiss__reasons' },
        h('legend', {}, 'Why are you dismissing this card?'),
        reasonInputs.map((r) => r.label),
        h('label', { class: 'choice' }, noReason, ' ', 'No coded reason'))
      : h('p', { class: 'dismiss__note' }, 'This card offers no coded override reasons; you may say why in a comment.'),
    h('label', { for: commentId }, 'Comment (optional)'),
    comment,
    h('div', { class: 'dismiss__buttons' }, submitDismiss, cancel));
  const dismiss = h('button', { type: 'button', class: 'button button--quiet dismiss-toggle', 'aria-expanded': 'false', 'aria-controls': dismissFormId }, 'Dismiss…');
  const toggleForm = (open) => {
    form.hidden = !open;
    dismiss.setAttribute('aria-expanded', String(open));
    if (open) (reasonInputs[0] ? reasonInputs[0].input : comment).focus();
    else dismiss.focus();
  };
  dismiss.addEventListener('click', () => toggleForm(form.hidden));
  cancel.addEventListener('click', () => toggleForm(false));
  form.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') toggleForm(false);
  });
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const chosen = reasonInputs.find((r) => r.input.checked);
    const text = comment.value.trim();
    const overrideReason = {};
    if (chosen) overrideReason.reason = chosen.reason;
    if (text) overrideReason.userComment = text;
    const item = { outcome: 'overridden' };
    if (Object.keys(overrideReason).length > 0) item.overrideReason = overrideReason;
    const why = [chosen && (chosen.reason.display || chosen.reason.code), text && `“${text}”`].filter(Boolean).join(', ');
    if (await send(item, `Dismissed${why ? `: ${why}` : ''}.`)) {
      form.hidden = true;
      dismiss.setAttribute('aria-expanded', 'false');
    }
  });
  buttons.push(dismiss, submitDismiss);

  return h('div', { class: 'card__actions' },
    suggestions.length > 0 ? suggestionList : null,
    h('div', { class: 'card__dismiss' }, dismiss),
    form,
    outcome);
}
