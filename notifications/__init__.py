"""Generic outbox delivery: any signed event to any URL, with retries and attempt records."""
