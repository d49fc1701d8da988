#ifndef STARINFER_RUNTIME_TIMER_H
#define STARINFER_RUNTIME_TIMER_H

/* Seconds on a monotonic clock. */
double timer_now(void);

#endif
