/* A loaded model: its config, weights, tokenizer, chat format and RoPE frequencies, read from a
 * Hugging Face directory as downloaded. */
#ifndef STARINFER_MODEL_MODEL_H
#define STARINFER_MODEL_MODEL_H

#include "model/chat.h"
#include "model/config.h"
#include "model/tokenizer.h"
#include "model/weights.h"

typedef struct {
    model_config cfg;
    model_weights w; /* fp32 on the host (model_load); empty from model_load_mapped */
    st_set set;      /* the safetensors files, kept open (mapped) when the weights were not
                      * converted on the host */
    tokenizer *tok;
    chat_format chat;
    float *inv_freq; /* [head_dim / 2] */
    /* Tensors of the files that the model config.json describes does not use (the first named):
     * the files may not match config.json. Left to the caller to report. */
    int n_unused;
    char first_unused[128];
} model;

/* Loads DIR/config.json (+ generation_config.json), the safetensors weights (single file or
 * sharded), DIR/tokenizer.json and DIR/tokenizer_config.json. Errors name the file at fault. */
int model_load(model *m, const char *dir, si_error *err);
/* Warns on stderr when the files hold tensors the model does not use (M->n_unused). */
void model_warn_unused(const model *m);
/* The same, for a backend that keeps its own copy of the weights: every tensor is found and
 * checked but left in the files (M->set, mapped) for backend_weights_stream, which converts them
 * tensor by tensor; M->w stays empty. What the commands use, on every backend. */
int model_load_mapped(model *m, const char *dir, si_error *err);
void model_free(model *m);

#endif
