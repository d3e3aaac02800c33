// The seat map: one <canvas> for any number of seats (a 10,000-seat event
// is one element, redrawn in one animation frame when something changed),
// with keyboard access (arrow keys move, Enter/Space picks) and a live
// region that says the focused seat in words. Status is never colour
// alone: held seats are hatched, sold seats crossed, picked seats ticked,
// your own held seats carry a dot.

import { h, money } from './dom.js';

const STATUS = { AVAILABLE: 0, HELD: 1, SOLD: 2 };
const NAMES = ['available', 'held by someone', 'sold'];
const PAINT_LOG_MAX = 2000;

export class SeatMap {
  /**
   * `layout`: `[{seatId, row, col, price}]`; `opts.onToggle(seatId)` is
   * called when the customer picks or unpicks an available seat.
   */
  constructor(layout, opts = {}) {
    this.opts = opts;
    this.seats = layout;
    this.index = new Map(layout.map((s, i) => [s.seatId, i]));
    this.rows = Math.max(1, ...layout.map((s) => s.row));
    this.cols = Math.max(1, ...layout.map((s) => s.col));
    this.byCell = new Int32Array(this.rows * this.cols).fill(-1);
    layout.forEach((s, i) => (this.byCell[(s.row - 1) * this.cols + (s.col - 1)] = i));
    this.status = new Uint8Array(layout.length);
    this.selected = new Set();
    this.mine = new Set();
    this.cursor = 0;
    this.pending = [];
    /** Every change drawn: `{seatId, status, version, paintedAtMs}` (bounded). */
    this.paints = [];
    this.canvas = h('canvas', {
      tabindex: 0,
      role: 'application',
      'aria-roledescription': 'seat map',
      'aria-label': `Seat map, ${this.rows} rows of ${this.cols}. Arrow keys move, Enter or Space picks a seat.`,
      class: 'seatmap',
    });
    this.live = h('p', { class: 'sr-only', 'aria-live': 'polite' });
    this.focusText = h('p', { class: 'focus-seat', id: 'focus-seat' });
    this.el = h('div', { class: 'seatmap-wrap' }, this.canvas);
    this.canvas.addEventListener('click', (e) => this.onClick(e));
    this.canvas.addEventListener('keydown', (e) => this.onKey(e));
    this.canvas.addEventListener('focus', () => this.redraw());
    this.resizer = new ResizeObserver(() => this.layoutCanvas());
    this.resizer.observe(this.el);
  }

  /** A whole map's statuses: `[{seatId, status}]`. */
  setAll(seats) {
    for (const s of seats) {
      const i = this.index.get(s.seatId);
      if (i !== undefined) this.status[i] = STATUS[s.status] ?? 0;
    }
    for (const id of [...this.selected]) if (this.statusOf(id) !== 'AVAILABLE') this.selected.delete(id);
    this.pending.push({ seatId: '*', status: 'snapshot' });
    this.redraw();
  }

  /** One change from the stream. */
  apply(seatId, status, version) {
    const i = this.index.get(seatId);
    if (i === undefined) return;
    this.status[i] = STATUS[status] ?? 0;
    if (status !== 'AVAILABLE' && this.selected.delete(seatId)) this.opts.onToggle?.(seatId, false);
    this.pending.push({ seatId, status, version });
    this.redraw();
  }

  statusOf(seatId) {
    const i = this.index.get(seatId);
    return i === undefined ? undefined : Object.keys(STATUS)[this.status[i]];
  }

  setMine(seatIds) {
    this.mine = new Set(seatIds);
    this.redraw();
  }

  clearSelection() {
    this.selected.clear();
    this.redraw();
  }

  toggle(seatId) {
    const i = this.index.get(seatId);
    if (i === undefined) return;
    if (this.selected.has(seatId)) {
      this.selected.delete(seatId);
      this.opts.onToggle?.(seatId, false);
    } else if (this.status[i] === STATUS.AVAILABLE && !this.mine.has(seatId)) {
      if (this.opts.canPick && !this.opts.canPick(seatId)) return;
      this.selected.add(seatId);
      this.opts.onToggle?.(seatId, true);
    } else {
      this.say(`${this.describe(i)} cannot be picked.`);
      return;
    }
    this.say(`${this.describe(i)}. ${this.selected.size} picked.`);
    this.redraw();
  }

  /** Where a seat's centre is on the page (tests click there). */
  cellCenter(seatId) {
    const s = this.seats[this.index.get(seatId)];
    const r = this.canvas.getBoundingClientRect();
    return { x: r.left + (s.col - 0.5) * this.cell, y: r.top + (s.row - 0.5) * this.cell };
  }

  describe(i) {
    const s = this.seats[i];
    const state = this.mine.has(s.seatId) ? 'held by you' : this.selected.has(s.seatId) ? 'picked' : NAMES[this.status[i]];
    return `Row ${s.row}, seat ${s.col}: ${state}, ${money(s.price)}`;
  }

  say(text) {
    this.live.textContent = text;
  }

  onClick(e) {
    const r = this.canvas.getBoundingClientRect();
    const col = Math.floor((e.clientX - r.left) / this.cell);
    const row = Math.floor((e.clientY - r.top) / this.cell);
    if (row < 0 || col < 0 || row >= this.rows || col >= this.cols) return;
    const i = this.byCell[row * this.cols + col];
    if (i < 0) return;
    this.cursor = i;
    this.toggle(this.seats[i].seatId);
    this.showFocus();
  }

  onKey(e) {
    const s = this.seats[this.cursor];
    let row = s.row - 1;
    let col = s.col - 1;
    const moves = {
      ArrowLeft: () => (col = Math.max(0, col - 1)),
      ArrowRight: () => (col = Math.min(this.cols - 1, col + 1)),
      ArrowUp: () => (row = Math.max(0, row - 1)),
      ArrowDown: () => (row = Math.min(this.rows - 1, row + 1)),
      PageUp: () => (row = Math.max(0, row - 10)),
      PageDown: () => (row = Math.min(this.rows - 1, row + 10)),
      Home: () => (col = 0),
      End: () => (col = this.cols - 1),
    };
    if (moves[e.key]) {
      moves[e.key]();
      const i = this.byCell[row * this.cols + col];
      if (i >= 0) this.cursor = i;
      this.say(this.describe(this.cursor));
      this.showFocus();
      this.scrollToCursor();
      this.redraw();
    } else if (e.key === 'Enter' || e.key === ' ') {
      this.toggle(s.seatId);
      this.showFocus();
    } else return;
    e.preventDefault();
  }

  showFocus() {
    this.focusText.textContent = this.describe(this.cursor);
  }

  scrollToCursor() {
    const s = this.seats[this.cursor];
    const x = (s.col - 1) * this.cell;
    const y = (s.row - 1) * this.cell;
    const w = this.el;
    if (x < w.scrollLeft || x + this.cell > w.scrollLeft + w.clientWidth) w.scrollLeft = x - w.clientWidth / 2;
    if (y < w.scrollTop || y + this.cell > w.scrollTop + w.clientHeight) w.scrollTop = y - w.clientHeight / 2;
  }

  layoutCanvas() {
    const width = this.el.clientWidth || 320;
    this.cell = Math.max(9, Math.min(34, Math.floor(width / this.cols)));
    const dpr = window.devicePixelRatio || 1;
    this.canvas.style.width = `${this.cols * this.cell}px`;
    this.canvas.style.height = `${this.rows * this.cell}px`;
    this.canvas.width = Math.round(this.cols * this.cell * dpr);
    this.canvas.height = Math.round(this.rows * this.cell * dpr);
    this.redraw();
  }

  redraw() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.draw();
    });
  }

  draw() {
    if (!this.cell) return;
    const ctx = this.canvas.getContext('2d');
    const dpr = window.devicePixelRatio || 1;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, this.cols * this.cell, this.rows * this.cell);
    for (let i = 0; i < this.seats.length; i++) this.drawSeat(ctx, i);
    if (document.activeElement === this.canvas) this.drawCursor(ctx);
    if (this.focusText.textContent) this.showFocus();
    const at = performance.timeOrigin + performance.now();
    for (const p of this.pending) this.paints.push({ ...p, paintedAtMs: at });
    this.pending = [];
    if (this.paints.length > PAINT_LOG_MAX) this.paints.splice(0, this.paints.length - PAINT_LOG_MAX);
  }

  drawSeat(ctx, i) {
    const s = this.seats[i];
    const c = this.cell;
    const gap = c > 14 ? 2 : 1;
    const x = (s.col - 1) * c + gap;
    const y = (s.row - 1) * c + gap;
    const w = c - 2 * gap;
    const kind = this.mine.has(s.seatId) ? 'mine' : this.selected.has(s.seatId) ? 'picked' : ['free', 'held', 'sold'][this.status[i]];
    paintSeat(ctx, kind, x, y, w);
  }

  drawCursor(ctx) {
    const s = this.seats[this.cursor];
    const c = this.cell;
    ctx.strokeStyle = '#000';
    ctx.lineWidth = 2;
    ctx.setLineDash([3, 2]);
    ctx.strokeRect((s.col - 1) * c + 0.5, (s.row - 1) * c + 0.5, c - 1, c - 1);
    ctx.setLineDash([]);
  }
}

/** Draws one seat of `kind` (free, held, sold, picked, mine) in a w×w box. */
export function paintSeat(ctx, kind, x, y, w) {
  const fill = { free: '#e8f5e9', held: '#ffcc80', sold: '#9e9e9e', picked: '#1565c0', mine: '#6a1b9a' }[kind];
  ctx.fillStyle = fill;
  ctx.fillRect(x, y, w, w);
  ctx.lineWidth = 1;
  ctx.strokeStyle = kind === 'free' ? '#2e7d32' : '#333';
  ctx.strokeRect(x + 0.5, y + 0.5, w - 1, w - 1);
  ctx.beginPath();
  if (kind === 'held') {
    ctx.moveTo(x, y + w);
    ctx.lineTo(x + w, y);
  } else if (kind === 'sold') {
    ctx.moveTo(x + 2, y + 2);
    ctx.lineTo(x + w - 2, y + w - 2);
    ctx.moveTo(x + w - 2, y + 2);
    ctx.lineTo(x + 2, y + w - 2);
  } else if (kind === 'picked') {
    ctx.moveTo(x + w * 0.2, y + w * 0.55);
    ctx.lineTo(x + w * 0.42, y + w * 0.78);
    ctx.lineTo(x + w * 0.8, y + w * 0.25);
  }
  ctx.strokeStyle = kind === 'picked' ? '#fff' : '#333';
  ctx.lineWidth = w > 12 ? 2 : 1;
  ctx.stroke();
  if (kind === 'mine') {
    ctx.fillStyle = '#fff';
    ctx.beginPath();
    ctx.arc(x + w / 2, y + w / 2, Math.max(1.5, w / 6), 0, Math.PI * 2);
    ctx.fill();
  }
}

/** The legend: each kind drawn the way the map draws it, with its word. */
export function legend() {
  const items = [
    ['free', 'available'],
    ['picked', 'picked (✓)'],
    ['mine', 'held by you (•)'],
    ['held', 'held by someone (╱)'],
    ['sold', 'sold (✕)'],
  ];
  return h(
    'ul',
    { class: 'legend', 'aria-label': 'Legend' },
    items.map(([kind, label]) => {
      const c = h('canvas', { width: 18, height: 18, 'aria-hidden': 'true' });
      paintSeat(c.getContext('2d'), kind, 1, 1, 16);
      return h('li', {}, c, ` ${label}`);
    }),
  );
}
