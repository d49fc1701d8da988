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
    "Answers the query over the context with Star Attention across the MPI ranks.\n" STAR_FLAGS_HELP
    GEN_FLAGS_HELP "  --json                 print the answer, timings and memory as JSON\n";

typedef struct {
    star_flags s;
    gen_flags g;
    const char *context, *query, *query_file;
    int json;
} run_opts;

static int parse(run_opts *o, int argc, char **argv, si_error *err)
{
    memset(o, 0, sizeof *o);
    star_flags_init(&o->s);
    gen_flags_init(&o->g);
    for (int i = 0; i < argc;) {
        const char *flag = argv[i++];
        if (!strcmp(flag, "--json") || gen_flags_switch(&o->g, flag) ||
            star_flags_switch(&o->s, flag)) {
            o->json |= !strcmp(flag, "--json");
            continue;
        }
        if (i == argc)
            return si_error_set(err, "%s needs a value (see --help)", flag);
        const char *value = argv[i++];
        int rc = star_flags_parse(&o->s, flag, value, err);
        if (rc == 0)
            rc = gen_flags_parse(&o->g, flag, value, err);
        if (rc < 0)
            return -1;
        if (rc == 1)
            continue;
        if (!strcmp(flag, "--context"))
            o->context = value;
        else if (!strcmp(flag, "--query"))
            o->query = value;
        else if (!strcmp(flag, "--query-file"))
            o->query_file = value;
        else
            return si_error_set(err, "unknown argument '%s' (see --help)", flag);
    }
    if (star_flags_check(&o->s, err))
        return -1;
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
    char *query = o->query ? strdup(o->query) : read_text(o->query_file, "--query-file", NULL, err);
    int rc = -1;
    if (query)
        rc = prompt_encode_request(m, o->g.use_chat, context, query, r, err);
    r->max_new_tokens = o->g.gen.max_new_tokens;
    free(context);
    free(query);
    return rc;
}

static int serve(const model *m, const run_opts *o, int rank)
{
    si_error err = {{0}};
    request_ids r = {0};
    request_status st = REQUEST_OK;
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
            report_print_json(stdout, &res, o->s.model_dir);
    }
    if (rc == 0)
        request_result_free(&res);
    request_ids_free(&r);
    return rc == 0 ? 0 : 1;
}

int cmd_run(int argc, char **argv)
{
    mpi_start(&argc, &argv);
    int rank = mpi_rank();
    run_opts o;
    si_error err;
    if (argc == 1 && !strcmp(argv[0], "--help")) {
        if (rank == 0)
            fputs(usage, stdout);
        mpi_stop();
        return 0;
    }
    if (parse(&o, argc, argv, &err) != 0) {
        if (rank == 0)
            fprintf(stderr, "starinfer run: %s\n", err.msg);
        mpi_stop();
        return 2;
    }
    session s;
    int rc = 1;
    if (session_open(&s, &o.s) == 0)
        rc = serve(&s.m, &o, rank);
    session_close(&s);
    mpi_stop();
    return rc;
}
