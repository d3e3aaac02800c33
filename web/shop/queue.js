// The waiting room of a protected event: join (one place per customer),
// then the place live over SSE (/api/queue/{event}/{ticket}/stream) —
// position, people ahead, estimated wait — until ADMITTED, whose admission
// token the page keeps (sessionStorage) and sends with every hold. A
// dropped stream is opened again; the ticket survives a reload.

import { api, ApiError } from './api.js';
import { h, fill } from './dom.js';
import { sentence } from './messages.js';

export class WaitingRoom {
  /** `onAdmitted(token)` is called once, with the admission token. */
  constructor(eventId, onAdmitted) {
    this.eventId = eventId;
    this.onAdmitted = onAdmitted;
    this.key = `ticketing.queue.${eventId}`;
    this.saved = JSON.parse(sessionStorage.getItem(this.key) || '{}');
    this.el = h('section', { class: 'waiting', 'aria-label': 'Waiting room', id: 'waiting-room' });
  }

  /** The admission token, while it is valid. */
  token() {
    const s = this.saved;
    return s.admissionToken && s.tokenExpiresAtMs > Date.now() ? s.admissionToken : null;
  }

  save() {
    sessionStorage.setItem(this.key, JSON.stringify(this.saved));
  }

  async enter() {
    if (this.token()) return this.onAdmitted(this.token());
    this.show({ text: 'Joining the line…' });
    try {
      if (!this.saved.ticket) {
        const j = await api('POST', `/api/queue/${encodeURIComponent(this.eventId)}`);
        this.saved = { ticket: j.ticket };
        this.save();
        this.place(j.place);
      }
      this.listen();
    } catch (e) {
      this.show({ error: e instanceof ApiError ? sentence(e.body) : String(e), retry: true });
    }
  }

  listen() {
    this.es?.close();
    const url = `/api/queue/${encodeURIComponent(this.eventId)}/${this.saved.ticket}/stream`;
    const es = new EventSource(url);
    this.es = es;
    es.addEventListener('place', (m) => this.place(JSON.parse(m.data)));
    es.addEventListener('error', () => {
      if (this.done) return es.close();
      es.close();
      this.show({ text: 'Reconnecting to the waiting room…', reconnecting: true });
      // A ticket the room no longer knows answers 404: ask once to find out.
      api('GET', `/api/queue/${encodeURIComponent(this.eventId)}/${this.saved.ticket}`)
        .then((p) => (this.place(p), this.done || setTimeout(() => this.listen(), 1000)))
        .catch((e) => {
          if (e instanceof ApiError && e.body.code === 'QUEUE_TICKET_NOT_FOUND') this.gone(sentence(e.body));
          else setTimeout(() => this.listen(), 2000);
        });
    });
  }

  place(p) {
    if (p.status === 'ADMITTED' && p.admissionToken) {
      this.done = true;
      this.es?.close();
      this.saved = { ...this.saved, admissionToken: p.admissionToken, tokenExpiresAtMs: p.tokenExpiresAtMs };
      this.save();
      this.show({ text: 'It is your turn!' });
      this.onAdmitted(p.admissionToken);
    } else if (p.status === 'EXPIRED') {
      this.gone('Your place in line expired.');
    } else {
      this.show({ place: p });
    }
  }

  gone(text) {
    this.done = true;
    this.es?.close();
    this.saved = {};
    this.save();
    this.show({ error: text, retry: true });
  }

  show({ text, place, error, retry, reconnecting }) {
    const parts = [h('h2', {}, 'Waiting room')];
    if (place) {
      parts.push(
        place.prequeue
          ? h('p', { id: 'queue-position' }, 'You are in line before the sale opens. When it opens, everyone in line gets a random place.')
          : h('p', { id: 'queue-position' }, `Your place in line: ${place.position ?? '…'} (${place.ahead ?? 0} ahead of you).`),
        h('p', {}, `Estimated wait: ${wait(place.estimatedWaitMs)}. Keep this page open; it updates by itself.`),
      );
    }
    if (text) parts.push(h('p', { role: 'status', class: reconnecting ? 'reconnecting' : '' }, text));
    if (error) parts.push(h('p', { role: 'alert', class: 'note' }, error));
    if (retry) {
      parts.push(h('button', { type: 'button', onclick: () => ((this.done = false), this.enter()) }, 'Join the line'));
    }
    fill(this.el, parts);
  }

  close() {
    this.done = true;
    this.es?.close();
  }
}

function wait(ms) {
  if (ms === null || ms === undefined) return 'unknown';
  if (ms < 60000) return `${Math.max(1, Math.round(ms / 1000))} s`;
  return `${Math.round(ms / 60000)} min`;
}
