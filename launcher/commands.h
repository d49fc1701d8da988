#ifndef STARINFER_LAUNCHER_COMMANDS_H
#define STARINFER_LAUNCHER_COMMANDS_H

/* Each takes the arguments after its name and returns the process's exit code. */
int cmd_generate(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_bench(int argc, char **argv);

#endif
