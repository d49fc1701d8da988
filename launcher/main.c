/* starinfer: long-context inference with Star Attention across MPI ranks. */
#include <stdio.h>
#include <string.h>

#include "launcher/commands.h"
#include "runtime/version.h"

static const char *usage =
    "usage: starinfer <command> [options]\n"
    "commands:\n"
    "  run        answer a query over a long context with Star Attention across MPI ranks\n"
    "  eval       answer a JSONL file of requests, appending one result per line\n"
    "  generate   run a prompt on one process with global attention\n"
    "  bench      time the runtime over context lengths, block and anchor sizes (roofline beside)\n"
    "  --version  print the version\n"
    "Run 'starinfer <command> --help' for a command's options.\n";

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("starinfer %s (commit %s)\n", starinfer_version(), starinfer_git_commit());
        return 0;
    }
    if (!strcmp(argv[1], "generate"))
        return cmd_generate(argc - 2, argv + 2);
    if (!strcmp(argv[1], "run"))
        return cmd_run(argc - 2, argv + 2);
    if (!strcmp(argv[1], "eval"))
        return cmd_eval(argc - 2, argv + 2);
    if (!strcmp(argv[1], "bench"))
        return cmd_bench(argc - 2, argv + 2);
    fprintf(stderr, "starinfer: unknown command '%s'\n%s", argv[1], usage);
    return 2;
}
