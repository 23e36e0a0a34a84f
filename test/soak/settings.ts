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

/** Placeholder until measured. */
export const MEMORY_GROWTH_BOUND_MB = 64;
