// A small, safe Markdown renderer for the subset the service's cards use:
// paragraphs, **bold**, _italic_, "- " bullet lists, backslash escapes
// (\[ \] \* \_ …) and [links](https://…) to http(s) addresses only.
// Everything else is text. The parser returns a plain tree; the DOM is built
// with createElement and text nodes only (never innerHTML), so no markup in
// the data can ever become an element, an attribute or a script.

const PUNCTUATION = /[!-/:-@[-`{-~]/;

/** Parses Markdown into blocks: {type: 'p', children} | {type: 'ul', items: [children]}. */
export function parseMarkdown(source) {
  const text = typeof source === 'string' ? source.replace(/\r\n?/g, '\n') : '';
  const blocks = [];
  let paragraph = [];
  let list = null;
  const flushParagraph = () => {
    if (paragraph.length > 0) blocks.push({ type: 'p', children: parseInline(paragraph.join('\n')) });
    paragraph = [];
  };
  const flushList = () => {
    if (list) blocks.push({ type: 'ul', items: list.map((item) => parseInline(item.join('\n'))) });
    list = null;
  };
  for (const line of text.split('\n')) {
    const bullet = /^ {0,3}[-*] +(.*)$/.exec(line);
    if (line.trim() === '') {
      flushParagraph();
      flushList();
    } else if (bullet) {
      flushParagraph();
      if (!list) list = [];
      list.push([bullet[1]]);
    } else if (list && /^ {2,}\S/.test(line)) {
      // an indented line continues the list item above
      list[list.length - 1].push(line.trim());
    } else {
      flushList();
      paragraph.push(line.trim());
    }
  }
  flushParagraph();
  flushList();
  return blocks;
}

/**
 * Parses inline Markdown into nodes: {type: 'text', text} | {type: 'strong' |
 * 'em', children} | {type: 'link', href, children} | {type: 'br'}.
 */
export function parseInline(source) {
  const nodes = [];
  let buffer = '';
  const pushText = (text) => {
    buffer += text;
  };
  const flush = () => {
    if (buffer) nodes.push({ type: 'text', text: buffer });
    buffer = '';
  };
  let i = 0;
  while (i < source.length) {
    const c = source[i];
    if (c === '\\' && i + 1 < source.length && PUNCTUATION.test(source[i + 1])) {
      pushText(source[i + 1]);
      i += 2;
    } else if (c === '\n') {
      // a soft line break reads as a space
      pushText(' ');
      i += 1;
    } else if (source.startsWith('**', i)) {
      const close = findDelimiter(source, i + 2, (j) => source.startsWith('**', j) && j > i + 2 && !/\s/.test(source[j - 1]));
      if (close > 0 && !/\s/.test(source[i + 2] || ' ')) {
        flush();
        nodes.push({ type: 'strong', children: parseInline(source.slice(i + 2, close)) });
        i = close + 2;
      } else {
        pushText('**');
        i += 2;
      }
    } else if (c === '_' && opensEmphasis(source, i)) {
      const close = findDelimiter(source, i + 1, (j) => source[j] === '_' && j > i + 1 && closesEmphasis(source, j));
      if (close > 0) {
        flush();
        nodes.push({ type: 'em', children: parseInline(source.slice(i + 1, close)) });
        i = close + 1;
      } else {
        pushText('_');
        i += 1;
      }
    } else if (c === '[') {
      const link = parseLink(source, i);
      if (link) {
        flush();
        nodes.push({ type: 'link', href: link.href, children: parseInline(link.label) });
        i = link.end;
      } else {
        pushText('[');
        i += 1;
      }
    } else {
      pushText(c);
      i += 1;
    }
  }
  flush();
  return nodes;
}

/** The index of the first unescaped position from `from` where `matches` holds, or -1. */
function findDelimiter(source, from, matches) {
  for (let j = from; j < source.length; j += 1) {
    if (source[j] === '\\') {
      j += 1;
    } else if (matches(j)) {
      return j;
    }
  }
  return -1;
}

const WORD = /[\p{L}\p{N}]/u;

function opensEmphasis(source, i) {
  const before = i > 0 ? source[i - 1] : ' ';
  const after = source[i + 1];
  return after !== undefined && !/\s/.test(after) && !WORD.test(before);
}

function closesEmphasis(source, j) {
  const before = source[j - 1];
  const after = j + 1 < source.length ? source[j + 1] : ' ';
  return !/\s/.test(before) && !WORD.test(after);
}

/** A [label](url) link at `i` whose url is http(s); otherwise null (the text stays literal). */
function parseLink(source, i) {
  let depth = 0;
  let close = -1;
  for (let j = i; j < source.length; j += 1) {
    if (source[j] === '\\') {
      j += 1;
    } else if (source[j] === '[') {
      depth += 1;
    } else if (source[j] === ']') {
      depth -= 1;
      if (depth === 0) {
        close = j;
        break;
      }
    }
  }
  if (close < 0 || source[close + 1] !== '(') return null;
  const end = findDelimiter(source, close + 2, (j) => source[j] === ')' || source[j] === '(' || /\s/.test(source[j]));
  if (end < 0 || source[end] !== ')') return null;
  const href = safeUrl(source.slice(close + 2, end).replace(/\\([!-/:-@[-`{-~])/g, '$1'));
  if (!href) return null;
  return { label: source.slice(i + 1, close), href, end: end + 1 };
}

/** The URL when it is an absolute http(s) URL, else null. */
export function safeUrl(text) {
  if (typeof text !== 'string' || !/^https?:\/\//i.test(text.trim())) return null;
  try {
    const url = new URL(text.trim());
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch {
    return null;
  }
}

/** Renders Markdown into a DocumentFragment of p, ul, li, strong, em and a elements. */
export function renderMarkdown(source, doc = globalThis.document) {
  const fragment = doc.createDocumentFragment();
  for (const block of parseMarkdown(source)) {
    if (block.type === 'p') {
      const p = doc.createElement('p');
      appendInline(p, block.children, doc);
      fragment.append(p);
    } else {
      const ul = doc.createElement('ul');
      for (const item of block.items) {
        const li = doc.createElement('li');
        appendInline(li, item, doc);
        ul.append(li);
      }
      fragment.append(ul);
    }
  }
  return fragment;
}

function appendInline(parent, nodes, doc, inLink = false) {
  for (const node of nodes) {
    if (node.type === 'text') {
      parent.append(doc.createTextNode(node.text));
    } else if (node.type === 'strong' || node.type === 'em') {
      const element = doc.createElement(node.type);
      appendInline(element, node.children, doc, inLink);
      parent.append(element);
    } else if (node.type === 'link' && inLink) {
      appendInline(parent, node.children, doc, true);
    } else if (node.type === 'link') {
      const a = doc.createElement('a');
      a.href = node.href;
      a.rel = 'noopener noreferrer';
      a.target = '_blank';
      appendInline(a, node.children, doc, true);
      parent.append(a);
    }
  }
}
