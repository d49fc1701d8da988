/* Named model shapes with no checkpoint: the config of a known model, built without a
 * config.json, for benchmarks on seeded random weights (backend_weights_random). */
#ifndef STARINFER_MODEL_SHAPES_H
#define STARINFER_MODEL_SHAPES_H

#include "model/model.h"

/* The known names, comma-separated, for messages. */
const char *model_shape_names(void);

/* M gets shape NAME's config and RoPE frequencies, no weights and no tokenizer (m->tok NULL);
 * an unknown NAME is an error that lists the known ones. */
int model_shape_init(model *m, const char *name, si_error *err);

#endif
