// DOM helpers: elements are built with createElement, attributes with
// setAttribute and text with text nodes. No innerHTML anywhere.

import { safeUrl } from './markdown.js';

let counter = 0;

/** A page-unique element id. */
export function uid(prefix) {
  counter += 1;
  return `${prefix}-${counter}`;
}

/**
 * h('button', {class: 'x', type: 'button', onclick: fn}, 'text', child, …):
 * `on…` members become event listeners, `false`/`null`/`undefined` members
 * are skipped, strings and numbers become text nodes.
 */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      element.addEventListener(name.slice(2), value);
    } else if (name === 'href') {
      const url = value.startsWith('/') && !value.startsWith('//') ? value : safeUrl(value);
      if (url) element.setAttribute('href', url);
    } else {
      element.setAttribute(name, value === true ? '' : String(value));
    }
  }
  append(element, children);
  return element;
}

export function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

/** Replaces an element's content. */
export function replace(parent, ...children) {
  parent.replaceChildren();
  return append(parent, children);
}

/** An external link (http(s) only; anything else is shown as text). */
export function externalLink(url, label, attributes = {}) {
  const href = safeUrl(url);
  if (!href) return h('span', { class: 'unsafe-link' }, label);
  return h('a', { ...attributes, href, target: '_blank', rel: 'noopener noreferrer' }, label, h('span', { class: 'visually-hidden' }, ' (opens in a new tab)'));
}

/** Pretty JSON. */
export function json(value) {
  return JSON.stringify(value, null, 2);
}
