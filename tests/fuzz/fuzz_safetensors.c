/* libFuzzer target for the safetensors header parser (not built by default). Each input is a
 * whole file: it is written to an in-memory file and opened with st_open_file, which must either
 * accept it or return an error, never crash, overread or leak.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. tests/fuzz/fuzz_safetensors.c \
 *         model/safetensors.c kernels/check.c -lcjson -o fuzz_safetensors
 *   ./fuzz_safetensors -max_total_time=60 CORPUS_DIR
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "model/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("fuzz.safetensors", 0);
        if (fd < 0) {
            perror("memfd_create");
            abort();
        }
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        abort();
    st_set set = {0};
    si_error err;
    if (st_open_file(&set, path, &err) == 0) {
        /* Every accepted tensor lies inside the mapping. */
        const char *begin = set.files[0].map, *end = begin + set.files[0].size;
        for (int i = 0; i < set.n_tensors; i++) {
            const char *p = set.tensors[i].data;
            if (set.tensors[i].nbytes && (p < begin || p + set.tensors[i].nbytes > end))
                abort();
        }
    }
    st_close(&set);
    return 0;
}
