#include "model/sampler.h"

void sampler_init(sampler *s, int vocab, float temperature, float top_p, uint64_t seed)
{
    s->temperature = temperature;
    s->top_p = top_p;
    s->state = seed ? seed : 0x9E3779B97F4A7C15ull;
    s->vocab = vocab;
}

int sampler_argmax(const float *logits, int vocab)
{
    int best = 0;
    for (int i = 1; i < vocab; i++)
        if (logits[i] > logits[best])
            best = i;
    return best;
}

float sampler_uniform(sampler *s)
{
    s->state ^= s->state >> 12;
    s->state ^= s->state << 25;
    s->state ^= s->state >> 27;
    return (float)((s->state * 0x2545F4914F6CDD1Dull) >> 40) / 16777216.0f;
}

int sampler_next(sampler *s, const backend *be, const float *logits)
{
    float u = s->temperature > 0.0f ? sampler_uniform(s) : 0.0f;
    return be->sample(logits, s->vocab, s->temperature, s->top_p, u);
}
