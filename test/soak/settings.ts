/**
 * Settings the soak bench and the soak test share, so both judge a run the
 * same way.
 */

/**
 * The worker's RECONNECT_WINDOW_SECONDS in the soak: short, so seats given up
 * by a drop expire during the run (and the ghost-seat check sees them go),
 * long enough that a resume 50 ms…1.5 s after the drop lands inside it on a
 * loaded machine.
 */
export const SOAK_RECONNECT_WINDOW_SECONDS = 5;

/**
 * Growth of the worker isolate's live JavaScript heap (after a forced GC)
 * from the warm-up to the end of the churn, in MB: what the room code keeps
 * alive, so what a leak in it would grow. Measured, 12 clients for 60 s
 * (three runs): +0.2, +0.2, +0.4 MB (2.4–2.6 → 2.6–2.8 MB);
 * 16 clients for 180 s: +0.1 MB (2.6 → 2.7); 16 clients without media,
 * read by hand after ~400 joins: 2.6 MB live. 4 MB is ten times the largest growth and
 * more than the whole live heap: a leak of some 30 KB per join (≈130 joins
 * after the warm-up) trips it, ordinary variation does not.
 */
export const HEAP_GROWTH_BOUND_MB = 4;

/**
 * Growth of workerd's RSS (both processes of `wrangler dev`) over the same
 * span, in MB. RSS also holds workerd's native memory and garbage not yet
 * collected: it rises by about 100 MB in the first minute of churn and then
 * levels off (180 s without media: 317 → 419 MB by 110 s, then 395–416 MB).
 * Measured from the warm-up to the end of 60 s runs with 12 clients: +95,
 * +113, +131 MB (16 clients: +87 MB); 180 s with 16 clients: +88 MB.
 * 400 MB is three times the largest: a runaway leak trips it, the
 * level-off does not.
 */
export const MEMORY_GROWTH_BOUND_MB = 400;
