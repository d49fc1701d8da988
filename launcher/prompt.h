/* Turning user text into token ids: the chat format (auto: the model's Llama 3 template when it
 * has one; none: raw text after BOS). */
#ifndef STARINFER_LAUNCHER_PROMPT_H
#define STARINFER_LAUNCHER_PROMPT_H

#include "model/model.h"
#include "runtime/request.h"

/* The ids of a whole prompt in one user turn (chat) or as raw text with BOS. */
int prompt_encode(const model *m, int use_chat, const char *text, int **ids, int *n,
                  si_error *err);

/* A long-context request split where Star Attention splits it: the context (with BOS and, in
 * chat format, the user header) and the query (in chat format, the end of the user turn and the
 * assistant header), as in one user turn holding "CONTEXT\n\nQUERY". */
int prompt_encode_request(const model *m, int use_chat, const char *context, const char *query,
                          request_ids *r, si_error *err);

#endif
