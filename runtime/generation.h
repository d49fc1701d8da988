/* The generation loop shared by every attention mode: the root picks each token (greedy or
 * seeded temperature/top-p), every rank continues with the root's choice, and the loop stops at
 * the model's EOS ids, at a stop string, or at max_new_tokens. */
#ifndef STARINFER_RUNTIME_GENERATION_H
#define STARINFER_RUNTIME_GENERATION_H

#include <stdint.h>
#include <stdio.h>

#include "kernels/backend.h"
#include "model/model.h"

typedef struct {
    int max_new_tokens;
    const char **stop; /* stop strings; the answer ends before the first one found */
    int n_stop;
    float temperature; /* 0: greedy */
    float top_p;
    uint64_t seed;
    int ignore_eos; /* keep going past EOS (fixed-length runs for benchmarks) */
} gen_params;

typedef struct {
    int *tokens; /* generated ids, EOS included when it ended the answer */
    int n_tokens;
    char *text; /* decoded, special tokens skipped, cut before a stop string */
    const char *finish; /* "eos", "stop" or "length"; "not-finite" with NOT_FINITE set */
    int not_finite;     /* the logits held a NaN or were not finite after N_TOKENS tokens */
    double seconds;     /* decode time after the first token */
} gen_result;

typedef struct {
    /* Runs the model on TOKEN at POS and returns its logits (every rank calls it). */
    const float *(*step)(void *user, int token, int pos);
    const backend *be; /* where the logits live and the token is picked; NULL: host logits */
    /* Makes every rank continue with the root's msg = {token, finished}; NULL with one process. */
    void (*agree)(void *user, int msg[2]);
    void *user;
    int is_root;
    FILE *stream; /* the root writes the answer here as it is generated; NULL: quiet */
} gen_driver;

/* LOGITS are the prompt's last logits (root, in D->be's memory); POS is the position of the first new token. */
void generate_tokens(const model *m, const float *logits, int pos, const gen_params *p,
                     const gen_driver *d, gen_result *out);
void gen_result_free(gen_result *r);
/* ERR for logits that were not finite after N_TOKENS generated tokens. */
void gen_not_finite_error(int n_tokens, si_error *err);

#endif
