#include "runtime/progress.h"

#include "kernels/check.h"
#include "runtime/timer.h"

void progress_start(progress *p, const char *what, long total)
{
    p->what = what;
    p->done = 0;
    p->total = total;
    p->start = p->last = timer_now();
}

void progress_add(progress *p, long n)
{
    p->done += n;
    double now = timer_now(), spent = now - p->start;
    if (p->done >= p->total || now - p->last < PROGRESS_EVERY || spent <= 0)
        return;
    p->last = now;
    /* No time left is given: attention makes each token dearer than the last. */
    si_log("%s: %ld of %ld tokens (%.0f%%) in %.0f s, %.0f tokens/s", p->what, p->done, p->total,
           100.0 * p->done / p->total, spent, p->done / spent);
}
