/** A tiny DOM builder: the widgets render plain elements (no React in our bundle). */

type Child = Node | string | null | undefined | false;

export function h(
  tag: string,
  attrs: { [name: string]: string | number | boolean | undefined } = {},
  ...children: (Child | Child[])[]
): HTMLElement {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) {
      continue;
    }
    if (name === 'className') {
      node.className = String(value);
    } else {
      node.setAttribute(name, value === true ? '' : String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) {
      continue;
    }
    node.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
  }
  return node;
}

/** A local, readable time for an ISO timestamp (or the text as is). */
export function timeText(iso: string | null | undefined): string {
  if (!iso) {
    return '';
  }
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString();
}
