/* Weights from the host (a memory-mapped checkpoint, as stored) into the device's copy. Each piece
 * is converted, or copied where the file already holds the device's format, by all of the rank's
 * threads into one of two pinned staging buffers, and its copy to the device is queued on the
 * stream the operations use: the host fills one buffer while the other crosses the bus, and the
 * file's bytes are read once. A buffer is filled again once its last copy has been made, so the
 * source may be unmapped as soon as the call returns. */
#include "kernels/convert.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"

#define STAGING_BYTES ((size_t)32 << 20)

typedef struct {
    void *buf[2];
    cudaEvent_t copied[2];
    int next;
} staging;

static staging *get_staging(void)
{
    static staging s;
    if (!s.buf[0])
        for (int i = 0; i < 2; i++) {
            cudaCheck(cudaMallocHost(&s.buf[i], STAGING_BYTES));
            cudaCheck(cudaEventCreateWithFlags(&s.copied[i], cudaEventDisableTiming));
        }
    return &s;
}

/* COUNT elements of TYPE at SRC into DST as WIDTH-byte elements (2: bf16, 4: fp32). */
static void upload(void *dst, const void *src, elem_type type, size_t count, size_t width)
{
    staging *s = get_staging();
    size_t piece = STAGING_BYTES / width, in = elem_size(type);
    for (size_t done = 0; done < count; done += piece) {
        size_t n = count - done < piece ? count - done : piece;
        void *buf = s->buf[s->next];
        cudaCheck(cudaEventSynchronize(s->copied[s->next])); /* its last copy has been read */
        const char *from = (const char *)src + done * in;
        if (width == 2)
            elems_to_bf16(buf, from, type, n);
        else
            elems_to_f32((float *)buf, from, type, n);
        cudaCheck(
            cudaMemcpyAsync((char *)dst + done * width, buf, n * width, cudaMemcpyHostToDevice, 0));
        cudaCheck(cudaEventRecord(s->copied[s->next], 0));
        s->next ^= 1;
    }
}

void cuda_weight_upload(void *dst, const void *src, elem_type type, size_t count)
{
    upload(dst, src, type, count, 2);
}

void cuda_weight_upload_f32(void *dst, const void *src, elem_type type, size_t count)
{
    upload(dst, src, type, count, 4);
}
