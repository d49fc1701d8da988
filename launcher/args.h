/* Command-line values, checked as they are read so that a bad one is reported with the flag
 * that carried it, and the generation flags that every command shares. */
#ifndef STARINFER_LAUNCHER_ARGS_H
#define STARINFER_LAUNCHER_ARGS_H

#include <stdint.h>

#include "kernels/check.h"
#include "runtime/generation.h"
#include "runtime/device.h"
#include "runtime/request.h"

#define MAX_STOP_STRINGS 16

int parse_int(const char *flag, const char *value, long min, long max, long *out, si_error *err);
int parse_float(const char *flag, const char *value, double min, double max, double *out,
                si_error *err);
int parse_u64(const char *flag, const char *value, uint64_t *out, si_error *err);

/* --model, --device and --dtype, which generate shares with run, eval and bench: 1 when FLAG is one
 * of them (VALUE taken into *MODEL_DIR, *DEVICE or *DTYPE), 0 when not, -1 on error. */
int model_device_flags_parse(const char *flag, const char *value, const char **model_dir,
                             device_kind *device, compute_dtype *dtype, si_error *err);

/* Flags shared by generate, run and eval. */
typedef struct {
    gen_params gen;
    const char *stop[MAX_STOP_STRINGS];
    int use_chat; /* --chat-template auto (1) or none (0) */
} gen_flags;

#define GEN_FLAGS_HELP                                                                             \
    "  --max-new-tokens N     tokens to generate at most (default 64)\n"                           \
    "  --temperature T        0 for greedy (default), else sample at T with --top-p and --seed\n"  \
    "  --top-p P              sample from the most likely tokens holding P of the probability\n"   \
    "                         (nucleus; default 1: all of them); needs --temperature\n"            \
    "  --seed S               seed of the sampling, to repeat a sampled answer (default 0)\n"      \
    "  --stop STR             end the answer before STR (repeatable)\n"                            \
    "  --chat-template MODE   auto (the model's Llama 3 template when it has one) or none\n"       \
    "  --ignore-eos           do not stop at the model's end-of-sequence tokens\n"

void gen_flags_init(gen_flags *g);
/* 1 when FLAG is a generation flag and VALUE was taken, 0 when it is not one, -1 on error. */
int gen_flags_parse(gen_flags *g, const char *flag, const char *value, si_error *err);
/* 1 when FLAG is a generation flag that takes no value (and it was applied), else 0. */
int gen_flags_switch(gen_flags *g, const char *flag);

/* Flags of the attention runtime, shared by run and eval. */
typedef struct {
    request_opts req;
    const char *model_dir;
    const char *shape;    /* bench: a named model shape (model/shapes.h) instead of --model */
    uint64_t weight_seed; /* bench: the seed of that shape's random weights */
    device_kind device;
    compute_dtype dtype;
    int share_gpus;
} star_flags;

/* The device flags, in every command's help. */
#define DEVICE_FLAGS_HELP                                                                          \
    "  --device KIND          auto (default: cuda when a GPU is present), cpu or cuda\n"           \
    "  --dtype T              auto (default: bf16 on a GPU, fp32 on a CPU), bf16 or fp32 (fp32\n"  \
    "                         throughout: a GPU's answers then match the CPU's)\n"

#define STAR_FLAGS_HELP                                                                            \
    "  --model DIR            a Hugging Face model directory, as downloaded\n"                     \
    "  --attn MODE            star (default) or global (ordinary attention on rank 0)\n"           \
    "  --block-size N         context tokens per block (default: context / ranks, rounded up)\n"   \
    "  --anchor-size N        anchor tokens, 1 <= N <= block (default: the block size)\n"          \
    "  --chunk N              most tokens per forward (default 512 on a CPU, 8192 on a GPU)\n"     \
    "  --merge MODE           auto (default), one-call or two-call: the MPI calls of the merge\n"  \
    "  --merge-transport T    mpi (default; host buffers) or nccl (GPU to GPU; one GPU a rank)\n"  \
    "  --share-gpus           several ranks of a node share a GPU (testing)\n" DEVICE_FLAGS_HELP

void star_flags_init(star_flags *s);
/* 1 when FLAG is one of these and VALUE was taken, 0 when it is not one, -1 on error. */
int star_flags_parse(star_flags *s, const char *flag, const char *value, si_error *err);
int star_flags_check(const star_flags *s, si_error *err);
/* 1 when FLAG is a star flag that takes no value (and it was applied), else 0. */
int star_flags_switch(star_flags *s, const char *flag);

/* The flags of run or eval beyond star_flags and gen_flags: with VALUE NULL, 1 when FLAG is one of
 * the command's switches (and it was applied); with a VALUE, 1 when FLAG is one of its flags
 * (and VALUE was taken); else 0. */
typedef int (*own_flags_fn)(void *opts, const char *flag, const char *value);

/* Warn on stderr of flags that others make moot (the command goes on): --block-size and
 * --anchor-size (BLOCK, ANCHOR: whether given) under --attn global, --top-p and --seed under
 * greedy decoding. Called by rank 0 once the flags are read. */
void star_flags_warn(attn_mode attn, int block, int anchor);
void gen_flags_warn(const gen_flags *g);

/* Whether any argument is --help or -h: a command's help wins over whatever else is given. */
int args_want_help(int argc, char **argv);

/* Reads the arguments of run or eval: S and G start from their defaults, each flag is offered to
 * S, then G, then OWN (with OPTS), and S is checked once all are read (rank 0 warns of flags
 * that others make moot). Returns 0, 1 when the arguments are just --help, or -1 with ERR set. */
int star_args_parse(star_flags *s, gen_flags *g, own_flags_fn own, void *opts, int argc,
                    char **argv, si_error *err);
/* Collective: makes every rank's PARSED (star_args_parse's result on that rank) the job's. Every
 * rank must have been given the same arguments (an MPMD launch can break that); a rank whose
 * differ, or any rank whose parse failed, makes it -1 everywhere, with ERR set on rank 0 to what
 * went wrong. */
int star_args_agree(int parsed, int argc, char **argv, si_error *err);
/* What a command's parsers made of FLAG, the last word when HAS_VALUE is 0 (they were then offered
 * an empty value, only to learn whether FLAG is one of theirs): RC 1 taken, 0 not a flag of any,
 * -1 a bad value (in ERR). Returns 0 when FLAG and its value were taken, else -1 with ERR saying
 * "unknown argument" or "needs a value". */
int args_flag_taken(const char *flag, int rc, int has_value, si_error *err);
/* Ends run or eval when its arguments are not to be served (PARSED: 1 for --help, -1 for an
 * error): rank 0 prints USAGE, or ERR as "starinfer NAME: ...", and MPI stops. Returns the exit
 * code, 0 or 2. */
int star_args_exit(int parsed, const char *name, const char *usage, const si_error *err);

/* Checks that --model's DIR is a directory before its files are looked for in it: a path that
 * does not exist, or a file, is reported as such rather than as a missing config.json. */
int model_dir_check(const char *dir, si_error *err);

/* Reads a whole file (PATH "-" is standard input) into a malloc'd NUL-terminated string. A
 * directory, or a file with a NUL byte in it (a binary file), is refused naming FLAG and PATH. */
char *read_text(const char *path, const char *flag, size_t *len, si_error *err);

#endif
