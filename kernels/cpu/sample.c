/* Picking the next token on the host: argmax, or temperature + nucleus (top-p) sampling with the
 * caller's uniform draw, by the rule written where backend.h declares the slot (the CUDA backend
 * follows the same rule, so that both pick the same token from the same logits and draw). */
#include <stdlib.h>
#include <math.h>

#include "kernels/check.h"
#include "kernels/cpu/cpu_ops.h"

typedef struct {
    float p;
    int id;
} candidate;

static int by_prob_desc(const void *a, const void *b)
{
    const candidate *x = a, *y = b;
    return x->p < y->p ? 1 : x->p > y->p ? -1 : x->id - y->id;
}

/* The lowest id of the largest logit, or -1 when a logit is NaN or the largest is not finite. */
static int argmax(const float *logits, int vocab)
{
    int best = 0, nan = 0;
    for (int i = 0; i < vocab; i++) {
        nan |= isnan(logits[i]);
        if (logits[i] > logits[best])
            best = i;
    }
    return nan || !isfinite(logits[best]) ? -1 : best;
}

/* Scratch that grows to the largest vocabulary seen: the slot is called once per token. */
static candidate *grow(int vocab)
{
    static candidate *buf;
    static int cap;
    if (vocab > cap) {
        free(buf);
        buf = mallocCheck(sizeof(candidate) * (size_t)vocab, "sampler scratch");
        cap = vocab;
    }
    return buf;
}

int cpu_sample(const float *logits, int vocab, float temperature, float top_p, float u)
{
    int best = argmax(logits, vocab);
    if (best < 0 || temperature <= 0.0f)
        return best;
    float max = logits[best];
    candidate *c = grow(vocab);
    double total = 0.0;
    for (int i = 0; i < vocab; i++) {
        c[i] = (candidate){expf((logits[i] - max) / temperature), i};
        total += c[i].p;
    }
    /* A token in the nucleus has p > (1 - top_p) * total / vocab (the mass from it onwards
     * exceeds (1 - top_p) * total and is at most vocab times its p): only those, with half that
     * bound as margin for rounding, need sorting. Tokens of p = 0 are never picked. */
    double cutoff = 0.5 * (1.0 - top_p) * total / vocab;
    int n = 0;
    for (int i = 0; i < vocab; i++)
        if (c[i].p > cutoff)
            c[n++] = c[i];
    if (n == 0)
        return best;
    qsort(c, n, sizeof *c, by_prob_desc);
    double cum = 0.0, need = (double)top_p * total;
    int k = n;
    for (int j = 0; j < n; j++) {
        cum += c[j].p;
        if (cum >= need) {
            k = j + 1;
            break;
        }
    }
    double kept = 0.0;
    for (int j = 0; j < k; j++)
        kept += c[j].p;
    double target = (double)u * kept;
    cum = 0.0;
    for (int j = 0; j < k; j++) {
        cum += c[j].p;
        if (cum > target)
            return c[j].id;
    }
    return c[k - 1].id;
}
