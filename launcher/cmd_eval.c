/* starinfer eval: a JSONL file of {"context", "query", "max_new_tokens"} requests, answered one
 * after another across every MPI rank, one result line appended (and synced) per request, so that
 * an interrupted run resumes where it stopped. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "launcher/args.h"
#include "launcher/commands.h"
#include "launcher/prompt.h"
#include "launcher/report.h"
#include "launcher/session.h"
#include "runtime/mpi_check.h"

static const char *usage =
    "usage: mpirun -np R starinfer eval --model DIR --requests IN.jsonl --out OUT.jsonl "
    "[options]\n"
    "Answers each line {\"context\", \"query\", \"max_new_tokens\"} of IN.jsonl and appends one "
    "result\nper line to OUT.jsonl (\"line\" names the request's line). Run again, it skips the "
    "lines already\nanswered in OUT.jsonl and tries again those recorded there as "
    "errors.\n"
    "  --requests FILE        the requests, one JSON object per line (a regular file)\n"
    "  --out FILE             the results, appended one JSON line per request\n" STAR_FLAGS_HELP
        GEN_FLAGS_HELP;

typedef struct {
    star_flags s;
    gen_flags g;
    const char *requests, *out;
} eval_opts;

static int eval_flag(void *opts, const char *flag, const char *value)
{
    eval_opts *o = opts;
    if (value && !strcmp(flag, "--requests"))
        o->requests = value;
    else if (value && !strcmp(flag, "--out"))
        o->out = value;
    else
        return 0;
    return 1;
}

static int parse(eval_opts *o, int argc, char **argv, si_error *err)
{
    memset(o, 0, sizeof *o);
    int rc = star_args_parse(&o->s, &o->g, eval_flag, o, argc, argv, err);
    if (rc)
        return rc;
    if (!o->requests || !o->out)
        return si_error_set(err, "--requests IN.jsonl and --out OUT.jsonl are required");
    return 0;
}

/* --out must not be --requests: each record appended would be read back as one more request, and
 * the file would grow without end. Links are followed; an --out not yet made is fine. */
static int check_out_path(const eval_opts *o, si_error *err)
{
    struct stat in, out;
    if (stat(o->requests, &in) == 0 && stat(o->out, &out) == 0 && in.st_dev == out.st_dev &&
        in.st_ino == out.st_ino)
        return si_error_set(err,
                            "--out '%s' is the same file as --requests '%s': the results would be "
                            "read back as requests; give --out another file",
                            o->out, o->requests);
    return 0;
}

/* Lines of the requests file already recorded in OUT, answered or failed ("error"); a line
 * recorded twice (failed, then answered when tried again) is what its later record says. A last
 * line cut short by an interruption is dropped from the file so that it is answered again; any
 * other line that is not a record of ours means that OUT is not our file: it is left alone. */
enum { LINE_NEW, LINE_ANSWERED, LINE_FAILED };

typedef struct {
    char *state; /* state[line], a LINE_ value, for lines 1..n_lines of the requests file */
    long n_lines;
} done_set;

static int not_a_result(const char *path, long lineno, si_error *err)
{
    return si_error_set(err, "--out %s: line %ld is not a starinfer result; choose another file",
                        path, lineno);
}

/* One complete line of OUT, LINENO: a record names its request's line in "line", a whole number
 * (checked within range before the cast: a double beyond long's range does not convert). */
static int read_record(done_set *d, const char *text, const char *path, long lineno, si_error *err)
{
    cJSON *rec = cJSON_ParseWithOpts(text, NULL, 1);
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(rec, "line");
    int rc = 0;
    if (!cJSON_IsObject(rec) || !n)
        rc = not_a_result(path, lineno, err);
    else if (!(cJSON_IsNumber(n) && n->valuedouble >= 1 && n->valuedouble <= d->n_lines &&
               n->valuedouble == (long)n->valuedouble))
        rc = si_error_set(err,
                          "--out %s: line %ld: \"line\" must be a whole number from 1 to %ld (the "
                          "lines of --requests); choose another --out file, or remove that line",
                          path, lineno, d->n_lines);
    else
        d->state[(long)n->valuedouble] =
            cJSON_GetObjectItemCaseSensitive(rec, "error") ? LINE_FAILED : LINE_ANSWERED;
    cJSON_Delete(rec);
    return rc;
}

/* Whether TEXT (LEN bytes, no newline) is a record cut short: it begins as records begin, those
 * of an answer (report_json) or of an error (append_error), or is the start of one. */
static int is_cut_record(const char *text, size_t len)
{
    static const char *const starts[] = {"{\"answer\":", "{\"line\":"};
    for (size_t i = 0; i < sizeof starts / sizeof *starts; i++) {
        size_t n = strlen(starts[i]);
        if (!strncmp(text, starts[i], len < n ? len : n))
            return 1;
    }
    return 0;
}

/* Reads what OUT records of the N_LINES requests; an OUT not yet made records none. */
static int load_done(done_set *d, const char *path, long n_lines, si_error *err)
{
    d->n_lines = n_lines;
    d->state = callocCheck(n_lines + 1, 1, "the lines already answered");
    FILE *f = fopen(path, "r+");
    if (!f)
        return errno == ENOENT ? 0 : si_error_set(err, "--out: cannot open '%s': %s", path,
                                                  strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long good_end = 0, lineno = 0;
    int rc = 0;
    while (rc == 0 && (len = getline(&line, &cap, f)) > 0) {
        lineno++;
        if (line[len - 1] != '\n') {
            if (!is_cut_record(line, len))
                rc = not_a_result(path, lineno, err);
            break;
        }
        good_end = ftell(f);
        if (strspn(line, " \t\r\n") < (size_t)len)
            rc = read_record(d, line, path, lineno, err);
    }
    free(line);
    if (rc == 0 && ftruncate(fileno(f), good_end) != 0)
        rc = si_error_set(err, "--out: cannot truncate '%s': %s", path, strerror(errno));
    fclose(f);
    return rc;
}

static int line_state(const done_set *d, long line)
{
    return line <= d->n_lines ? d->state[line] : LINE_NEW;
}

/* The lines of F, as eval_root reads them; F is rewound. */
static long count_lines(FILE *f)
{
    char *line = NULL;
    size_t cap = 0;
    long n = 0;
    while (getline(&line, &cap, f) > 0)
        n++;
    free(line);
    rewind(f);
    return n;
}

static void append_record(FILE *out, cJSON *rec)
{
    char *s = cJSON_PrintUnformatted(rec);
    fprintf(out, "%s\n", s);
    fflush(out);
    fsync(fileno(out));
    free(s);
    cJSON_Delete(rec);
}

static void append_error(FILE *out, long line, const char *what)
{
    cJSON *rec = cJSON_CreateObject();
    cJSON_AddNumberToObject(rec, "line", line);
    cJSON_AddStringToObject(rec, "error", what);
    append_record(out, rec);
}

/* Parses one JSONL line into a request; an error says what is wrong with it. */
static int parse_request(const model *m, const eval_opts *o, const char *text, request_ids *r,
                         si_error *err)
{
    /* The whole line is one object: text after it (whitespace aside) makes the line bad. */
    cJSON *j = cJSON_ParseWithOpts(text, NULL, 1);
    int rc = -1;
    if (!cJSON_IsObject(j)) {
        si_error_set(err, "not a JSON object (or text follows it on the line)");
        goto done;
    }
    const cJSON *ctx = cJSON_GetObjectItemCaseSensitive(j, "context");
    const cJSON *query = cJSON_GetObjectItemCaseSensitive(j, "query");
    const cJSON *mnt = cJSON_GetObjectItemCaseSensitive(j, "max_new_tokens");
    if (!cJSON_IsString(ctx) || !cJSON_IsString(query)) {
        si_error_set(err, "\"context\" and \"query\" must both be strings");
        goto done;
    }
    /* Checked on the text: with a chat template, an empty context still encodes to its header. */
    const char *empty = !*ctx->valuestring ? "context" : !*query->valuestring ? "query" : NULL;
    if (empty) {
        si_error_set(err, "the %s is empty: give some text in \"%s\"", empty, empty);
        goto done;
    }
    r->max_new_tokens = o->g.gen.max_new_tokens;
    if (mnt) {
        if (!cJSON_IsNumber(mnt) || mnt->valuedouble < 0 || mnt->valuedouble > (1 << 24) ||
            mnt->valuedouble != (int)mnt->valuedouble) {
            si_error_set(err, "\"max_new_tokens\" must be a whole number from 0 to %d", 1 << 24);
            goto done;
        }
        r->max_new_tokens = mnt->valueint;
    }
    rc = prompt_encode_request(m, o->g.use_chat, ctx->valuestring, query->valuestring, r, err);
done:
    cJSON_Delete(j);
    return rc;
}

/* Opens --requests for reading. It must be a regular file: a directory opens too, and would read
 * as an empty file; a pipe could not be read again once its lines are counted (count_lines), and
 * one without a writer would never open. */
static FILE *open_requests(const char *path, si_error *err)
{
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        si_error_set(err, "--requests %s is %s: give the JSONL file of requests", path,
                     S_ISDIR(st.st_mode) ? "a directory"
                                         : "not a regular file (eval reads it twice)");
        return NULL;
    }
    FILE *f = fopen(path, "r");
    if (!f)
        si_error_set(err, "--requests: cannot open '%s': %s", path, strerror(errno));
    return f;
}

/* Rank 0: reads requests, shares each with the other ranks, records results. */
static int eval_root(const model *m, const eval_opts *o, request_opts *ro)
{
    si_error err;
    done_set done = {0};
    FILE *in = open_requests(o->requests, &err);
    FILE *out = NULL;
    if (in && load_done(&done, o->out, count_lines(in), &err) == 0 && !(out = fopen(o->out, "a")))
        si_error_set(&err, "--out: cannot open '%s' for appending: %s", o->out, strerror(errno));
    if (!in || !out) {
        fprintf(stderr, "starinfer eval: %s\n", err.msg);
        request_share(MPI_COMM_WORLD, REQUEST_END, &(request_ids){0});
        if (in)
            fclose(in);
        free(done.state);
        return 1;
    }
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0, answered = 0, failed = 0, retried = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, in)) > 0) {
        lineno++;
        int state = line_state(&done, lineno);
        if (strspn(line, " \t\r\n") == strlen(line) || state == LINE_ANSWERED)
            continue;
        retried += state == LINE_FAILED;
        request_ids r = {0};
        /* A NUL would end the text where JSON parsing stops, and hide the rest of the line. */
        int nul = memchr(line, 0, (size_t)len) != NULL;
        if (nul)
            si_error_set(&err, "a NUL byte at offset %zu of the line (a binary file?)",
                         strlen(line));
        if (nul || parse_request(m, o, line, &r, &err) != 0) {
            fprintf(stderr, "starinfer eval: %s:%ld: %s\n", o->requests, lineno, err.msg);
            append_error(out, lineno, err.msg);
            request_ids_free(&r);
            failed++;
            continue;
        }
        request_share(MPI_COMM_WORLD, REQUEST_OK, &r);
        request_result res;
        if (request_run(m, MPI_COMM_WORLD, &r, ro, &res, &err) != 0) {
            fprintf(stderr, "starinfer eval: %s:%ld: %s\n", o->requests, lineno, err.msg);
            append_error(out, lineno, err.msg);
            failed++;
        } else {
            si_log("request on line %ld answered: time to first token %.3f s, %d tokens",
                   lineno, res.ttft_s, res.gen.n_tokens);
            cJSON *rec = report_json(&res);
            cJSON_AddNumberToObject(rec, "line", lineno);
            append_record(out, rec);
            request_result_free(&res);
            answered++;
        }
        request_ids_free(&r);
    }
    request_share(MPI_COMM_WORLD, REQUEST_END, &(request_ids){0});
    si_log("eval: %ld answered, %ld failed, %ld of those retried after an earlier error; results "
           "in %s",
           answered, failed, retried, o->out);
    free(line);
    free(done.state);
    fclose(in);
    fclose(out);
    return failed ? 1 : 0;
}

/* Other ranks: serve each shared request until rank 0 says the file is done. */
static void eval_follow(const model *m, request_opts *ro)
{
    for (;;) {
        request_ids r = {0};
        if (request_share(MPI_COMM_WORLD, REQUEST_OK, &r) == REQUEST_END)
            return;
        request_result res;
        si_error err;
        if (request_run(m, MPI_COMM_WORLD, &r, ro, &res, &err) == 0)
            request_result_free(&res);
        request_ids_free(&r);
    }
}

int cmd_eval(int argc, char **argv)
{
    mpi_start(&argc, &argv);
    eval_opts o;
    si_error err;
    int rc = star_args_agree(parse(&o, argc, argv, &err), argc, argv, &err);
    /* Rank 0 alone reads the files: it checks them, and every rank learns its verdict. */
    if (rc == 0 && !mpi_all_ok(mpi_rank() != 0 || check_out_path(&o, &err) == 0))
        rc = -1;
    if (rc)
        return star_args_exit(rc, "eval", usage, &err);
    session s;
    rc = 1;
    if (session_open(&s, &o.s) == 0) {
        request_opts ro = o.s.req;
        ro.gen = o.g.gen;
        if (mpi_rank() == 0) {
            rc = eval_root(&s.m, &o, &ro);
        } else {
            eval_follow(&s.m, &ro);
            rc = 0;
        }
    }
    session_close(&s);
    mpi_stop();
    return rc;
}
