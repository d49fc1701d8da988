/* Turning user text into token ids: the chat format (auto: the model's template when it has
 * the Llama 3 one; none: raw text after BOS). */
#ifndef STARINFER_LAUNCHER_PROMPT_H
#define STARINFER_LAUNCHER_PROMPT_H

#include "model/model.h"

/* The ids of a whole prompt in one user turn (chat) or as raw text with BOS. */
int prompt_encode(const model *m, int use_chat, const char *text, int **ids, int *n,
                  si_error *err);

#endif
