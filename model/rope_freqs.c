#include "model/rope_freqs.h"

#include <math.h>

/* Llama 3.1 scaling: wavelengths longer than original_max / low_freq_factor are divided by
 * factor, shorter than original_max / high_freq_factor kept, and those between interpolated
 * smoothly. Same expressions, in fp32, as the reference (HF _compute_llama3_parameters). */
static float llama3_scale(float inv_freq, const model_config *cfg)
{
    float old_len = (float)cfg->rope_original_max_positions;
    float low_wavelen = old_len / cfg->rope_low_freq_factor;
    float high_wavelen = old_len / cfg->rope_high_freq_factor;
    float wavelen = (float)(2.0 * M_PI) / inv_freq;
    if (wavelen > low_wavelen)
        return inv_freq / cfg->rope_factor;
    if (wavelen < high_wavelen)
        return inv_freq;
    float smooth = (old_len / wavelen - cfg->rope_low_freq_factor) /
                   (cfg->rope_high_freq_factor - cfg->rope_low_freq_factor);
    return (1.0f - smooth) * inv_freq / cfg->rope_factor + smooth * inv_freq;
}

void rope_inv_freq(float *inv_freq, const model_config *cfg)
{
    int half = cfg->head_dim / 2;
    for (int j = 0; j < half; j++) {
        float exponent = (float)(2 * j) / (float)cfg->head_dim;
        float f = 1.0f / powf(cfg->rope_theta, exponent);
        inv_freq[j] = cfg->rope_scaling == ROPE_SCALING_LLAMA3 ? llama3_scale(f, cfg) : f;
    }
}
