// Building elements without ever parsing data as HTML: text goes in through textContent only.
const SVG_NS = 'http://www.w3.org/2000/svg';

export function h(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  return assign(node, props, children);
}

export function svg(tag, attrs = {}, children = []) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  for (const child of children) node.append(child);
  return node;
}

function assign(node, { className, text, attrs, dataset, on } = {}, children = []) {
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
  for (const [name, value] of Object.entries(dataset || {})) node.dataset[name] = String(value);
  for (const [type, handler] of Object.entries(on || {})) node.addEventListener(type, handler);
  for (const child of children) if (child) node.append(child);
  return node;
}

export function setText(node, value) {
  const text = value === undefined || value === null ? '' : String(value);
  if (node.textContent !== text) node.textContent = text;
}
