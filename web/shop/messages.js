// Every error the API answers, as a sentence a customer understands. The
// codes are contract v1/v2's (docs/API.md); an unknown code still gets a
// sentence, with the code after it for support.

import { seatName } from './dom.js';

const seats = (ids) => (ids || []).map(seatName).join('; ');

const SENTENCES = {
  SEATS_UNAVAILABLE: (b) =>
    `Someone else just took ${b.seatIds?.length > 1 ? 'these seats' : 'this seat'}: ${seats(b.seatIds)}. Pick another.`,
  SEAT_NOT_FOUND: (b) => `There is no such seat here: ${seats(b.seatIds)}.`,
  CUSTOMER_LIMIT: (b) =>
    b.customerLimit?.kind === 'ACTIVE_HOLDS'
      ? `You already hold seats ${b.customerLimit.count} times for this event; buy or release a hold first (at most ${b.customerLimit.limit} at once).`
      : `You can have at most ${b.customerLimit?.limit ?? 'a few'} seats of this event, held or bought (you have ${b.customerLimit?.count ?? 'some'}).`,
  HOLD_EXPIRED: () => 'Your hold ran out, and its seats went back on sale.',
  HOLD_RELEASED: () => 'This hold was released; its seats are on sale again.',
  HOLD_ORDERED: () => 'This hold has already been ordered.',
  HOLD_PINNED: () => 'This hold is being paid for and cannot change now.',
  HOLD_NOT_FOUND: () => 'This hold no longer exists.',
  HOLD_EXTENSION_LIMIT: () => 'This hold cannot be extended any further.',
  ORDER_NOT_FOUND: () => 'We could not find this order.',
  ORDER_NOT_CONFIRMED: () => 'Only a confirmed order can be cancelled.',
  REFUND_WINDOW_CLOSED: () => 'Tickets can no longer be cancelled: the event starts too soon.',
  EVENT_NOT_FOUND: () => 'This event does not exist.',
  RATE_LIMITED: (b) =>
    `Too many tries in a short time. Try again in ${Math.max(1, Math.ceil((b.retryAfterMs || 1000) / 1000))} s.`,
  UNAUTHENTICATED: () => 'Please log in (again) to do this.',
  INVALID_CREDENTIALS: () => 'That email and password do not match an account.',
  EMAIL_TAKEN: () => 'An account with this email already exists. Log in instead.',
  VALIDATION_FAILED: (b) => `Please check what you entered: ${b.message}.`,
  ADMISSION_REQUIRED: () => 'This sale goes through a waiting room: join the line first.',
  ADMISSION_INVALID: () => 'Your turn in the waiting room has ended. Join the line again.',
  QUEUE_NOT_OPEN: () => 'The waiting room is not open yet. Come back a little before the sale.',
  QUEUE_NOT_ENABLED: () => 'This event has no waiting room.',
  QUEUE_TICKET_NOT_FOUND: () => 'Your place in line is gone. Join the line again.',
  SERVICE_UNAVAILABLE: () => 'The shop is very busy or partly down. Try again in a moment; nothing was lost.',
  IDEMPOTENCY_KEY_MISMATCH: () => 'This checkout was already used for other seats. Reload the page.',
  PAYLOAD_TOO_LARGE: () => 'That request was too large.',
  NETWORK: () => 'We could not reach the shop. Check your connection and try again.',
  TIMEOUT: () => 'The shop took too long to answer. Try again; nothing was charged twice.',
};

/** The sentence for an error body `{code, message, …}`. */
export function sentence(body) {
  const f = SENTENCES[body?.code];
  if (f) return f(body);
  return `Something went wrong${body?.code ? ` (${body.code})` : ''}. Please try again.`;
}

/** Why an order did not go through, as a sentence. */
export function reasonSentence(reason) {
  return (
    {
      PAYMENT_DECLINED: 'Your payment was declined; the seats were released.',
      PAYMENT_UNAVAILABLE: 'The payment service could not be reached in time; nothing was charged and the seats were released.',
      HOLD_EXPIRED: 'Your hold ran out before the payment finished; nothing was charged.',
      HOLD_RELEASED: 'The hold was released before the payment finished; nothing was charged.',
      HOLD_NOT_PINNED: 'The hold could not be kept for checkout; nothing was charged.',
      SEAT_CONFLICT: 'A seat could not be confirmed; nothing was charged.',
    }[reason] || (reason ? `The order did not go through (${reason}).` : '')
  );
}

/** An order status as words. */
export function statusWords(status) {
  return (
    {
      PENDING: 'Processing your payment…',
      CONFIRMED: 'Confirmed — your tickets are booked.',
      CANCELLED: 'Cancelled.',
      FAILED: 'Not completed.',
      CANCELLING: 'Cancelling and refunding…',
      REFUNDED: 'Cancelled and refunded.',
      REFUND_FAILED: 'Cancelled; the refund is delayed. We will retry it.',
    }[status] || status
  );
}

export const TERMINAL = new Set(['CONFIRMED', 'CANCELLED', 'FAILED', 'REFUNDED', 'REFUND_FAILED']);
