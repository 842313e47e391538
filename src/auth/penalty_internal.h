/* Hooks for tests of penalty.c: a settable clock and the table sizes. */
#ifndef ROOST_PENALTY_INTERNAL_H
#define ROOST_PENALTY_INTERNAL_H

#include "auth.h"

/* Replaces the monotonic clock (milliseconds) used by p; NULL restores it. */
void auth_penalty_set_clock(struct auth_penalty *p, uint64_t (*now_ms)(void *ctx), void *ctx);
/* Entries held in the failure table and in the user+IP table. */
void auth_penalty_counts(struct auth_penalty *p, size_t *failures_r, size_t *userip_r);

#endif
