/* Choosing the next token from logits: greedy (temperature 0), or temperature with nucleus
 * (top-p) sampling from a seeded generator, so that a run can be repeated exactly. The uniform
 * draw is made here, on the host; the backend picks the token where the logits are (backend.h's
 * sample slot), so that only the id crosses to the host and every backend picks alike. */
#ifndef STARINFER_MODEL_SAMPLER_H
#define STARINFER_MODEL_SAMPLER_H

#include <stdint.h>

#include "kernels/backend.h"

typedef struct {
    float temperature; /* 0: greedy */
    float top_p;       /* 1: no nucleus cut */
    uint64_t state;
    int vocab;
} sampler;

void sampler_init(sampler *s, int vocab, float temperature, float top_p, uint64_t seed);
/* The next uniform draw in [0, 1) (xorshift64*, 24 bits). */
float sampler_uniform(sampler *s);
/* The next token from one row of LOGITS in BE's memory. Greedy picks the first largest logit,
 * as torch.argmax does; sampling draws one uniform per token. */
int sampler_next(sampler *s, const backend *be, const float *logits);
/* The first largest of VOCAB host logits. */
int sampler_argmax(const float *logits, int vocab);

#endif
