/* Progress of a long pass on stderr, from whichever rank runs it: a line every PROGRESS_EVERY
 * seconds at most, with the tokens done and the rate so far; a short pass stays quiet.
 * On a GPU the host queues work a few chunks ahead, so the figures lead the device's a little. */
#ifndef STARINFER_RUNTIME_PROGRESS_H
#define STARINFER_RUNTIME_PROGRESS_H

#define PROGRESS_EVERY 5.0

typedef struct {
    const char *what; /* "phase 1", "prefill" */
    long done, total;
    double start, last;
} progress;

void progress_start(progress *p, const char *what, long total);
/* N more tokens done. */
void progress_add(progress *p, long n);

#endif
