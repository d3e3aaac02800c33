-- After-sale (issue 17): a confirmed order's cancellation, as the refund
-- saga's state (JSON, NULL until a cancellation starts). `done` now means
-- "nothing for the watchdog": the forward saga done and no cancellation
-- under way (REFUNDED, or REFUND_FAILED waiting for an operator).
ALTER TABLE orders ADD COLUMN refund JSONB;
