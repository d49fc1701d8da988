#include <stdio.h>

#include "runtime/version.h"

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("starinfer %s\n", starinfer_version());
    return 0;
}
