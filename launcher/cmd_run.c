/* starinfer run: one long-context request across every MPI rank. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "launcher/args.h"
#include "launcher/commands.h"
#include "launcher/prompt.h"
#include "launcher/report.h"
#include "launcher/session.h"
#include "runtime/mpi_check.h"

static const char *usage =
    "usage: mpirun -np R starinfer run --model DIR --context FILE|- (--query TEXT | --query-file "
    "FILE) [options]\n"
    "Answers the query over the context with Star Attention across the MPI ranks.\n"
    "  --context FILE|-       the document, a text file ('-': standard input)\n"
    "  --query TEXT           the question\n"
    "  --query-file FILE      the question, read from FILE\n" STAR_FLAGS_HELP GEN_FLAGS_HELP
    "  --json                 print the answer, timings and memory as JSON\n";

typedef struct {
    star_flags s;
    gen_flags g;
    const char *context, *query, *query_file;
    int json;
} run_opts;

static int run_flag(void *opts, const char *flag, const char *value)
{
    run_opts *o = opts;
    if (!value && !strcmp(flag, "--json"))
        o->json = 1;
    else if (value && !strcmp(flag, "--context"))
        o->context = value;
    else if (value && !strcmp(flag, "--query"))
        o->query = value;
    else if (value && !strcmp(flag, "--query-file"))
        o->query_file = value;
    else
        return 0;
    return 1;
}

static int parse(run_opts *o, int argc, char **argv, si_error *err)
{
    memset(o, 0, sizeof *o);
    int rc = star_args_parse(&o->s, &o->g, run_flag, o, argc, argv, err);
    if (rc)
        return rc;
    if (!o->context)
        return si_error_set(err, "--context FILE is required ('-' reads standard input)");
    if (!o->query == !o->query_file)
        return si_error_set(err, "give exactly one of --query TEXT and --query-file FILE");
    return 0;
}

/* Rank 0 reads and tokenizes the request. */
static int read_request(const model *m, const run_opts *o, request_ids *r, si_error *err)
{
    char *context = read_text(o->context, "--context", NULL, err);
    if (!context)
        return -1;
    if (!context[strspn(context, " \t\n\v\f\r")]) {
        si_error_set(err, "--context %s is empty%s; give the document the query is about",
                     o->context, *context ? " (whitespace only)" : "");
        free(context);
        return -1;
    }
    char *query = o->query ? strdup(o->query) : read_text(o->query_file, "--query-file", NULL, err);
    int rc = -1;
    if (query)
        rc = prompt_encode_request(m, o->g.use_chat, context, query, r, err);
    r->max_new_tokens = o->g.gen.max_new_tokens;
    free(context);
    free(query);
    return rc;
}

static int serve(const session *s, const run_opts *o, int rank)
{
    si_error err = {{0}};
    request_ids r = {0};
    request_status st = REQUEST_OK;
    const model *m = &s->m;
    if (rank == 0 && read_request(m, o, &r, &err) != 0) {
        fprintf(stderr, "starinfer run: %s\n", err.msg);
        st = REQUEST_SKIP;
    }
    if (request_share(MPI_COMM_WORLD, st, &r) != REQUEST_OK)
        return 1;
    request_opts ro = o->s.req;
    ro.gen = o->g.gen;
    ro.stream = o->json ? NULL : stdout;
    request_result res;
    int rc = request_run(m, MPI_COMM_WORLD, &r, &ro, &res, &err);
    if (rc != 0) {
        if (rank == 0)
            fprintf(stderr, "starinfer run: %s\n", err.msg);
    } else if (rank == 0) {
        request_print_timings(&res);
        if (o->json)
            report_print_json(stdout, &res, o->s.model_dir, s->load_s);
    }
    if (rc == 0)
        request_result_free(&res);
    request_ids_free(&r);
    return rc == 0 ? 0 : 1;
}

int cmd_run(int argc, char **argv)
{
    mpi_start(&argc, &argv);
    run_opts o;
    si_error err;
    int rc = star_args_agree(parse(&o, argc, argv, &err), argc, argv, &err);
    if (rc)
        return star_args_exit(rc, "run", usage, &err);
    session s;
    rc = 1;
    if (session_open(&s, &o.s) == 0)
        rc = serve(&s, &o, mpi_rank());
    session_close(&s);
    mpi_stop();
    return rc;
}
