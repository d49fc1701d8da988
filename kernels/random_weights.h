/* Seeded pseudo-random weights that every backend generates where it computes, element by element
 * from a counter-based hash (splitmix64 of the seed and the element's index), so that the CPU and
 * a GPU fill a tensor with the same values (before rounding to the backend's format) and no host
 * copy of a large model is ever made. For benchmarks: the values are random, not a trained
 * model. */
#ifndef STARINFER_KERNELS_RANDOM_WEIGHTS_H
#define STARINFER_KERNELS_RANDOM_WEIGHTS_H

#include <stdint.h>

#ifdef __CUDACC__
#define SI_HOST_DEVICE __host__ __device__
#else
#define SI_HOST_DEVICE
#endif

/* Steele, Lea and Flood's splitmix64 finalizer (the mixing step of Java's SplittableRandom). */
static inline SI_HOST_DEVICE uint64_t splitmix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* Element INDEX of the tensor seeded with SEED: uniform on [-1, 1) in steps of 2^-23, from the
 * hash's top 24 bits. Every step is exact in fp32, so every backend gets the same number. */
static inline SI_HOST_DEVICE float random_weight_unit(uint64_t seed, uint64_t index)
{
    uint64_t h = splitmix64(splitmix64(seed) ^ index);
    return (float)(h >> 40) * (1.0f / 8388608.0f) - 1.0f;
}

#endif
