#include "model/sampler.h"

#include <math.h>
#include <stdlib.h>

#include "kernels/check.h"

void sampler_init(sampler *s, int vocab, float temperature, float top_p, uint64_t seed)
{
    s->temperature = temperature;
    s->top_p = top_p;
    s->state = seed ? seed : 0x9E3779B97F4A7C15ull;
    s->vocab = vocab;
    s->order = mallocCheck(sizeof(int) * vocab, "sampler scratch");
    s->prob = mallocCheck(sizeof(float) * vocab, "sampler scratch");
}

void sampler_free(sampler *s)
{
    free(s->order);
    free(s->prob);
}

int sampler_argmax(const float *logits, int vocab)
{
    int best = 0;
    for (int i = 1; i < vocab; i++)
        if (logits[i] > logits[best])
            best = i;
    return best;
}

/* xorshift64*: a uniform float in [0, 1). */
static float next_uniform(sampler *s)
{
    s->state ^= s->state >> 12;
    s->state ^= s->state << 25;
    s->state ^= s->state >> 27;
    return (float)((s->state * 0x2545F4914F6CDD1Dull) >> 40) / 16777216.0f;
}

static const float *sort_prob;
static int by_prob_desc(const void *a, const void *b)
{
    float pa = sort_prob[*(const int *)a], pb = sort_prob[*(const int *)b];
    return pa < pb ? 1 : pa > pb ? -1 : *(const int *)a - *(const int *)b;
}

int sampler_next(sampler *s, const float *logits)
{
    if (s->temperature <= 0.0f)
        return sampler_argmax(logits, s->vocab);
    float max = logits[sampler_argmax(logits, s->vocab)], sum = 0.0f;
    for (int i = 0; i < s->vocab; i++) {
        s->prob[i] = expf((logits[i] - max) / s->temperature);
        sum += s->prob[i];
    }
    /* Only tokens above (1 - top_p) / (vocab - 1) of the mass can be in the nucleus: sort those. */
    float cutoff = s->top_p < 1.0f ? (1.0f - s->top_p) / (s->vocab - 1) * sum : -1.0f;
    int n = 0;
    for (int i = 0; i < s->vocab; i++)
        if (s->prob[i] > cutoff)
            s->order[n++] = i;
    sort_prob = s->prob;
    qsort(s->order, n, sizeof(int), by_prob_desc);
    float kept = 0.0f;
    int last = n - 1;
    for (int i = 0; i < n; i++) {
        kept += s->prob[s->order[i]];
        if (kept >= s->top_p * sum) {
            last = i;
            break;
        }
    }
    float r = next_uniform(s) * kept, acc = 0.0f;
    for (int i = 0; i <= last; i++) {
        acc += s->prob[s->order[i]];
        if (r < acc)
            return s->order[i];
    }
    return s->order[last];
}
