// The live seat stream: one EventSource on /api/events/{id}/seats/stream.
// The browser reconnects by itself after a dropped connection and sends
// Last-Event-ID, so the server replays the changes missed (or a fresh
// snapshot when they are too old); while it does, the page shows
// "reconnecting". A stream the server refused (closed for good) is opened
// again with a growing pause, from a fresh snapshot. A change whose
// version skips one would mean a lost change: the stream is reopened from
// a snapshot instead of showing a wrong map.

const BACKOFF_MAX_MS = 10000;

export class SeatStream {
  constructor(eventId, { onSnapshot, onChange, onState }) {
    this.url = `/api/events/${encodeURIComponent(eventId)}/seats/stream`;
    this.handlers = { onSnapshot, onChange, onState };
    this.version = -1;
    this.state = 'connecting';
    /** What happened, for the page's status line and for tests. */
    this.counts = { opens: 0, snapshots: 0, changes: 0, drops: 0, resumes: 0, reopens: 0 };
    this.backoffMs = 500;
  }

  start() {
    this.closed = false;
    const es = new EventSource(this.url);
    this.es = es;
    es.addEventListener('open', () => {
      this.counts.opens += 1;
      if (this.state === 'reconnecting') this.counts.resumes += 1;
      this.backoffMs = 500;
      this.setState('live');
    });
    es.addEventListener('snapshot', (m) => {
      const map = JSON.parse(m.data);
      this.version = map.version;
      this.counts.snapshots += 1;
      this.handlers.onSnapshot(map);
    });
    es.addEventListener('change', (m) => this.change(JSON.parse(m.data)));
    es.addEventListener('error', () => {
      if (this.closed || es !== this.es) return;
      this.counts.drops += 1;
      if (es.readyState === EventSource.CLOSED) {
        this.setState('reconnecting');
        this.reopen();
      } else {
        this.setState('reconnecting');
      }
    });
  }

  change(c) {
    if (c.version <= this.version) return; // already seen (a replay overlap)
    if (this.version >= 0 && c.version !== this.version + 1) {
      this.reopen(); // a gap: never show a map with a lost change
      return;
    }
    this.version = c.version;
    this.counts.changes += 1;
    this.handlers.onChange(c);
  }

  reopen() {
    this.es?.close();
    this.counts.reopens += 1;
    const wait = this.backoffMs;
    this.backoffMs = Math.min(BACKOFF_MAX_MS, this.backoffMs * 2);
    setTimeout(() => !this.closed && this.start(), wait);
  }

  setState(s) {
    this.state = s;
    this.handlers.onState?.(s);
  }

  close() {
    this.closed = true;
    this.es?.close();
  }
}
