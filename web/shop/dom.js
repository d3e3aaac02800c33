// Small DOM helpers: every text goes in as text (never as HTML), so nothing
// the API returns can run as script.

/** `h('button', {class: 'x', onclick: f}, 'text', child…)` → an element. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Replaces the children of `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Cents as money: 4500 → "45.00". */
export function money(cents) {
  return (cents / 100).toFixed(2);
}

/** "3-7" → "row 3, seat 7". */
export function seatName(seatId) {
  const [row, col] = seatId.split('-');
  return `row ${row}, seat ${col}`;
}
