// Hold → checkout → order status → cancel, for one event. What the page
// must not lose on a reload (the hold, the order's Idempotency-Key, the
// order id, the cancel's key) is kept in sessionStorage before each call,
// so a double click or a reload repeats the same request (the API answers
// the first result again) instead of placing a second order.

import { api, ApiError, newKey, session } from './api.js';
import { h, fill, money, seatName } from './dom.js';
import { sentence, reasonSentence, statusWords, TERMINAL } from './messages.js';

const POLL_MS = 400;
const POLL_MAX = 750; // reads of one order at most
const POLL_FOR_MS = 5 * 60 * 1000; // and 5 minutes
// The server answers a PENDING or CANCELLING order as soon as it leaves
// that status, or after this long (`?waitMs=`): one read, not a poll.
const WAIT_MS = 5000;

export class Checkout {
  /** `opts`: `{eventId, seatmap, holdSeconds, maxSeats, admission(), onError(text)}`. */
  constructor(opts) {
    this.o = opts;
    this.key = `ticketing.checkout.${opts.eventId}`;
    this.saved = JSON.parse(sessionStorage.getItem(this.key) || '{}');
    this.picked = [];
    this.busy = false;
    this.el = h('section', { class: 'checkout', 'aria-label': 'Your seats' });
    this.render();
  }

  save() {
    sessionStorage.setItem(this.key, JSON.stringify(this.saved));
  }

  /** After a reload: pick up the hold or order where it was. */
  async resume() {
    const s = this.saved;
    if (s.orderKey && !s.orderId && s.hold) await this.buy();
    else if (s.orderId) this.poll();
    else if (s.hold) {
      try {
        this.setHold(await api('GET', `/api/reservations/${s.hold.holdId}`));
      } catch (e) {
        this.dropHold(e instanceof ApiError ? sentence(e.body) : String(e));
      }
    }
  }

  picks(seatIds) {
    this.picked = seatIds;
    this.render();
  }

  async hold() {
    await this.call(async () => {
      const headers = {};
      const token = this.o.admission?.();
      if (token) headers['x-admission-token'] = token;
      const hold = await api('POST', '/api/reservations', {
        headers,
        body: { eventId: this.o.eventId, seatIds: this.picked, holdSeconds: this.o.holdSeconds },
      });
      this.o.seatmap.clearSelection();
      this.picked = [];
      this.saved = { hold };
      this.save();
      this.setHold(hold);
    });
  }

  setHold(hold) {
    this.saved.hold = hold;
    this.save();
    this.o.seatmap.setMine(hold.seatIds);
    clearInterval(this.ticker);
    this.ticker = setInterval(() => this.tick(), 250);
    this.render();
  }

  tick() {
    const hold = this.saved.hold;
    if (!hold || this.saved.orderId) return clearInterval(this.ticker);
    const leftMs = hold.expiresAtMs - Date.now();
    if (leftMs <= 0 && hold.status !== 'CHECKOUT') {
      this.dropHold(sentence({ code: 'HOLD_EXPIRED' }));
      return;
    }
    const t = this.el.querySelector('[role=timer]');
    if (t) t.textContent = clock(leftMs);
  }

  dropHold(message) {
    clearInterval(this.ticker);
    this.saved = {};
    this.save();
    this.o.seatmap.setMine([]);
    this.note = message;
    this.render();
  }

  async extend() {
    await this.call(async () => {
      const hold = this.saved.hold;
      this.setHold(await api('POST', `/api/reservations/${hold.holdId}/extend`, { body: { holdSeconds: this.o.holdSeconds } }));
      this.note = 'Your hold was extended.';
    });
  }

  async release() {
    await this.call(async () => {
      await api('DELETE', `/api/reservations/${this.saved.hold.holdId}`);
      this.dropHold('Released: the seats are on sale again.');
    });
  }

  async buy() {
    if (!this.saved.orderKey) {
      this.saved.orderKey = newKey('order');
      this.save(); // before the call: a reload repeats this key
    }
    await this.call(async () => {
      const r = await api('POST', '/api/orders', {
        headers: { 'idempotency-key': this.saved.orderKey },
        body: { holdId: this.saved.hold.holdId },
      });
      this.saved.orderId = r.orderId;
      this.saved.order = r;
      this.save();
      this.poll();
    });
  }

  async cancel() {
    if (!this.saved.cancelKey) {
      this.saved.cancelKey = newKey('cancel');
      this.save();
    }
    await this.call(async () => {
      const r = await api('POST', `/api/orders/${this.saved.orderId}/cancel`, { headers: { 'idempotency-key': this.saved.cancelKey } });
      this.saved.order = { ...this.saved.order, status: r.status };
      this.save();
      this.poll();
    });
  }

  /** Reads the order until its status is terminal (bounded). */
  async poll() {
    clearTimeout(this.poller);
    this.render();
    const until = Date.now() + POLL_FOR_MS;
    for (let i = 0; i < POLL_MAX && Date.now() < until; i++) {
      let waited = false;
      try {
        const order = await api('GET', `/api/orders/${this.saved.orderId}?waitMs=${WAIT_MS}`);
        this.saved.order = order;
        this.save();
        this.render();
        if (TERMINAL.has(order.status) && !(order.status === 'CONFIRMED' && this.saved.cancelKey)) {
          this.finished(order);
          return;
        }
        // Still PENDING or CANCELLING after the server's wait: ask again now.
        waited = order.status === 'PENDING' || order.status === 'CANCELLING';
      } catch (e) {
        this.note = e instanceof ApiError ? sentence(e.body) : String(e);
        this.render();
      }
      if (!waited) await new Promise((r) => (this.poller = setTimeout(r, POLL_MS)));
    }
  }

  finished(order) {
    clearInterval(this.ticker);
    if (order.status === 'CONFIRMED') this.o.seatmap.setMine([]);
    if (order.status !== 'CONFIRMED') this.note = reasonSentence(order.reason);
    this.render();
  }

  /** Runs one call with the buttons disabled and its error said in words. */
  async call(f) {
    if (this.busy) return;
    this.busy = true;
    this.note = '';
    this.render();
    try {
      await f();
    } catch (e) {
      const body = e instanceof ApiError ? e.body : { code: 'NETWORK' };
      this.note = sentence(body);
      if (['HOLD_EXPIRED', 'HOLD_RELEASED', 'HOLD_NOT_FOUND'].includes(body.code) && !this.saved.orderId) this.dropHold(this.note);
      if (body.code === 'SEATS_UNAVAILABLE') this.o.seatmap.clearSelection();
    } finally {
      this.busy = false;
      this.render();
    }
  }

  newPurchase() {
    this.saved = {};
    this.save();
    this.note = '';
    this.render();
  }

  render() {
    const s = this.saved;
    const button = (label, onclick, extra = {}) => h('button', { type: 'button', onclick, disabled: this.busy, ...extra }, label);
    const parts = [];
    if (s.orderId) parts.push(this.orderPart(button));
    else if (s.hold) parts.push(this.holdPart(button));
    else parts.push(this.pickPart(button));
    if (this.busy) parts.push(h('p', { class: 'pending', role: 'status' }, 'Working…'));
    if (this.note) parts.push(h('p', { class: 'note', role: 'alert' }, this.note));
    fill(this.el, h('h2', {}, 'Your seats'), parts);
  }

  pickPart(button) {
    const total = this.picked.reduce((sum, id) => sum + this.o.seatmap.seats[this.o.seatmap.index.get(id)].price, 0);
    if (!session()) {
      return h('p', {}, 'Pick seats on the map, then ', h('a', { href: `#/login?next=${encodeURIComponent(location.hash)}` }, 'log in'), ' to hold them.');
    }
    return h(
      'div',
      {},
      h('p', {}, this.picked.length ? `Picked: ${this.picked.map(seatName).join('; ')} — ${money(total)}` : `Pick up to ${this.o.maxSeats} seats on the map.`),
      button(`Hold ${this.picked.length || ''} seat${this.picked.length === 1 ? '' : 's'}`, () => this.hold(), {
        id: 'hold',
        disabled: this.busy || this.picked.length === 0,
      }),
    );
  }

  holdPart(button) {
    const hold = this.saved.hold;
    return h(
      'div',
      {},
      h('p', {}, `Held for you: ${hold.seatIds.map(seatName).join('; ')} — ${money(hold.amountCents)}`),
      h('p', {}, 'Time left: ', h('strong', { role: 'timer', 'aria-live': 'off', id: 'countdown' }, clock(hold.expiresAtMs - Date.now()))),
      h('div', { class: 'buttons' }, button(`Buy for ${money(hold.amountCents)}`, () => this.buy(), { id: 'buy', class: 'primary' }), button('More time', () => this.extend(), { id: 'extend' }), button('Release', () => this.release(), { id: 'release' })),
    );
  }

  orderPart(button) {
    const order = this.saved.order || { status: 'PENDING' };
    const done = TERMINAL.has(order.status);
    return h(
      'div',
      {},
      h('p', { id: 'order-status', role: 'status', dataset: { status: order.status } }, statusWords(order.status)),
      order.seatIds ? h('p', {}, `${order.seatIds.map(seatName).join('; ')} — ${money(order.amountCents)}`) : null,
      h('p', { class: 'small' }, `Order ${this.saved.orderId}`),
      h('div', { class: 'buttons' },
        order.status === 'CONFIRMED' ? button('Cancel and refund', () => this.cancel(), { id: 'cancel' }) : null,
        done ? button('Buy more seats', () => this.newPurchase(), { id: 'again' }) : null),
    );
  }
}

/** Milliseconds as m:ss (never negative). */
export function clock(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}
