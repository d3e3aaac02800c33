// The shop's pages (hash routes, so the server serves one document):
//   #/                 events with live availability
//   #/login?next=…     log in or sign up
//   #/events/{id}      the seat map (through the waiting room when the
//                      event has one), hold, checkout, order, cancel;
//                      `?hold=S` asks for S-second holds (1–600; default 120)
// `window.__shop` exposes the live objects to the end-to-end tests.

import { api, ApiError, session, setSession } from './api.js';
import { h, fill } from './dom.js';
import { sentence } from './messages.js';
import { SeatMap, legend } from './seatmap.js';
import { SeatStream } from './stream.js';
import { Checkout } from './checkout.js';
import { WaitingRoom } from './queue.js';

const main = document.getElementById('main');
const MAX_SEATS = 8;
let cleanup = [];
window.__shop = {};

function route() {
  for (const f of cleanup) f();
  cleanup = [];
  window.__shop = {};
  header();
  const [path, query] = location.hash.replace(/^#/, '').split('?');
  const params = new URLSearchParams(query || '');
  const parts = (path || '/').split('/').filter(Boolean);
  if (parts[0] === 'login') return loginPage(params.get('next') || '#/');
  if (parts[0] === 'events' && parts[1]) return eventPage(decodeURIComponent(parts[1]), params);
  return eventsPage();
}

function header() {
  const s = session();
  fill(
    document.getElementById('who'),
    s
      ? [h('span', {}, `Logged in as ${s.email}`), ' ', h('button', { type: 'button', class: 'link', onclick: () => setSession(null) }, 'Log out')]
      : h('a', { href: `#/login?next=${encodeURIComponent(location.hash || '#/')}`, id: 'login-link' }, 'Log in'),
  );
}

function problem(e) {
  return h('p', { role: 'alert', class: 'note' }, e instanceof ApiError ? sentence(e.body) : String(e));
}

async function eventsPage() {
  document.title = 'Events — Tickets';
  const list = h('ul', { class: 'events', id: 'events' });
  fill(main, h('h1', {}, 'Events'), list);
  const load = async () => {
    try {
      const events = await api('GET', '/api/events');
      fill(
        list,
        events.map((e) =>
          h(
            'li',
            {},
            h('a', { href: `#/events/${encodeURIComponent(e.eventId)}` }, e.title),
            h('span', { class: 'small' }, ` ${new Date(e.startsAt).toLocaleString()}`),
            h('span', { class: 'avail', dataset: { event: e.eventId } }, ` — ${e.availableCount} of ${e.seatCount} seats left`),
            e.waitingRoom ? h('span', { class: 'badge' }, 'waiting room') : null,
          ),
        ),
      );
    } catch (e) {
      fill(list, problem(e));
    }
  };
  await load();
  const t = setInterval(load, 3000);
  cleanup.push(() => clearInterval(t));
}

function loginPage(next) {
  document.title = 'Log in — Tickets';
  const email = h('input', { type: 'email', id: 'email', name: 'email', autocomplete: 'username', required: true });
  const password = h('input', { type: 'password', id: 'password', name: 'password', autocomplete: 'current-password', minlength: 8, required: true });
  const out = h('div', { 'aria-live': 'polite' });
  const go = async (signUp) => {
    fill(out, h('p', { class: 'pending', role: 'status' }, signUp ? 'Creating your account…' : 'Logging in…'));
    const body = { email: email.value, password: password.value };
    try {
      if (signUp) await api('POST', '/api/users', { body });
      const s = await api('POST', '/api/sessions', { body });
      setSession({ ...s, email: body.email.trim().toLowerCase() });
      location.hash = next;
    } catch (e) {
      fill(out, problem(e));
    }
  };
  const form = h(
    'form',
    { class: 'login', onsubmit: (e) => (e.preventDefault(), go(false)) },
    h('label', { for: 'email' }, 'Email'),
    email,
    h('label', { for: 'password' }, 'Password (8 characters or more)'),
    password,
    h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary', id: 'log-in' }, 'Log in'), h('button', { type: 'button', id: 'sign-up', onclick: () => form.reportValidity() && go(true) }, 'Sign up')),
    out,
  );
  fill(main, h('h1', {}, 'Log in or sign up'), form);
  email.focus();
}

async function eventPage(eventId, params) {
  const holdSeconds = Math.min(600, Math.max(1, Number(params.get('hold')) || 120));
  fill(main, h('p', { class: 'pending', role: 'status' }, 'Loading the event…'));
  let event;
  try {
    event = await api('GET', `/api/events/${encodeURIComponent(eventId)}`);
  } catch (e) {
    return fill(main, h('p', {}, h('a', { href: '#/' }, '← All events')), problem(e));
  }
  document.title = `${event.title} — Tickets`;
  const area = h('div', { class: 'event-area' });
  fill(main, h('p', {}, h('a', { href: '#/' }, '← All events')), h('h1', {}, event.title), h('p', { class: 'small' }, new Date(event.startsAt).toLocaleString()), area);
  if (!event.waitingRoom) return seatsPage(event, area, holdSeconds, null);
  if (!session()) {
    return fill(area, h('p', {}, 'This sale goes through a waiting room. ', h('a', { href: `#/login?next=${encodeURIComponent(location.hash)}` }, 'Log in'), ' to join the line.'));
  }
  const room = new WaitingRoom(eventId, () => {
    room.close();
    seatsPage(event, area, holdSeconds, () => room.token());
  });
  window.__shop.room = room;
  cleanup.push(() => room.close());
  fill(area, room.el);
  room.enter();
}

async function seatsPage(event, area, holdSeconds, admission) {
  fill(area, h('p', { class: 'pending', role: 'status' }, 'Loading the seat map…'));
  let layout;
  try {
    layout = await api('GET', `/api/events/${encodeURIComponent(event.eventId)}/seats/layout`);
  } catch (e) {
    return fill(area, problem(e));
  }
  const line = h('p', { id: 'stream-state', role: 'status', class: 'stream-state' }, 'Connecting…');
  const seatmap = new SeatMap(layout.seats, {
    canPick: () => seatmap.selected.size < MAX_SEATS,
    onToggle: () => checkout.picks([...seatmap.selected]),
  });
  const checkout = new Checkout({ eventId: event.eventId, seatmap, holdSeconds, maxSeats: MAX_SEATS, admission });
  const stream = new SeatStream(event.eventId, {
    onSnapshot: (m) => seatmap.setAll(m.seats),
    onChange: (c) => seatmap.apply(c.seatId, c.status, c.version),
    onState: (s) => {
      line.textContent = s === 'live' ? 'Live: seats update as they change.' : 'Reconnecting… the map may be behind for a moment.';
      line.className = `stream-state ${s}`;
    },
  });
  Object.assign(window.__shop, { seatmap, stream, checkout });
  cleanup.push(() => stream.close());
  fill(area, h('div', { class: 'event-grid' }, h('div', { class: 'map-col' }, line, legend(), seatmap.el, seatmap.focusText, seatmap.live), checkout.el));
  seatmap.layoutCanvas();
  stream.start();
  checkout.resume();
}

window.addEventListener('hashchange', route);
window.addEventListener('session', route);
route();
