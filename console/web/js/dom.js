// DOM helpers. Text always goes in as text nodes (textContent), never as
// markup: dead letters, headers, reasons and schemas are untrusted input.

/** An element with attributes and children (strings become text nodes). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'class') node.className = value;
    else if (name === 'text') node.textContent = String(value);
    else if (name.startsWith('on') && typeof value === 'function') node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces every child of `node`. */
export function replaceChildren(node, ...children) {
  node.replaceChildren();
  append(node, children);
}

/** A number as plain text with at most `digits` decimals (`12.4`, `0`). */
export function num(value, digits = 2) {
  if (value === null || value === undefined || Number.isNaN(value)) return '';
  return String(Number(Number(value).toFixed(digits)));
}

/** `$(id)`. */
export const byId = (id) => document.getElementById(id);

/** Form text split at commas, trimmed, empty parts dropped. */
export function list(text) {
  return String(text || '').split(',').map((s) => s.trim()).filter(Boolean);
}
