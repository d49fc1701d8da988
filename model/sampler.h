/* Choosing the next token from logits: greedy (temperature 0), or temperature with nucleus
 * (top-p) sampling from a seeded generator, so that a run can be repeated exactly. */
#ifndef STARINFER_MODEL_SAMPLER_H
#define STARINFER_MODEL_SAMPLER_H

#include <stdint.h>

typedef struct {
    float temperature; /* 0: greedy */
    float top_p;       /* 1: no nucleus cut */
    uint64_t state;
    int vocab;
    int *order; /* scratch [vocab] */
    float *prob; /* scratch [vocab] */
} sampler;

void sampler_init(sampler *s, int vocab, float temperature, float top_p, uint64_t seed);
void sampler_free(sampler *s);
/* Greedy picks the first largest logit, as torch.argmax does. */
int sampler_next(sampler *s, const float *logits);
int sampler_argmax(const float *logits, int vocab);

#endif
