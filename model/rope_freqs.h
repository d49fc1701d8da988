/* RoPE inverse frequencies for a config, with Llama 3.1's `rope_scaling` of type llama3. */
#ifndef STARINFER_MODEL_ROPE_FREQS_H
#define STARINFER_MODEL_ROPE_FREQS_H

#include "model/config.h"

/* Fills inv_freq[head_dim / 2], computed in fp32 step by step as the reference does. */
void rope_inv_freq(float *inv_freq, const model_config *cfg);

#endif
