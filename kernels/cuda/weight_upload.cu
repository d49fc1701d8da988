/* Weights from the host (a memory-mapped checkpoint, as stored) into the device's copy. Each piece
 * is converted, or copied where the file already holds the device's format, by all of the rank's
 * threads into one of two pinned staging buffers, and its copy to the device is queued on the
 * stream the operations use: the host fills one buffer while the other crosses the bus, and the
 * file's bytes are read once. A buffer is filled again once its last copy has been made, so the
 * source may be unmapped as soon as the call returns. F16 is as wide as bf16: its bytes cross as
 * stored and are rounded on the device, in place, after the tensor's last piece (the host's
 * conversion ran at 3-4 GB/s on an H100's host, the copies at 33 GB/s). */
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
    int on_device = width == 2 && type == ELEM_F16; /* rounded on the device, below */
    size_t piece = STAGING_BYTES / width, in = elem_size(type);
    for (size_t done = 0; done < count; done += piece) {
        size_t n = count - done < piece ? count - done : piece;
        void *buf = s->buf[s->next];
        cudaCheck(cudaEventSynchronize(s->copied[s->next])); /* its last copy has been read */
        const char *from = (const char *)src + done * in;
        if (on_device)
            elems_to_bf16(buf, from, ELEM_BF16, n); /* a copy of the 16-bit values */
        else if (width == 2)
            elems_to_bf16(buf, from, type, n);
        else
            elems_to_f32((float *)buf, from, type, n);
        cudaCheck(
            cudaMemcpyAsync((char *)dst + done * width, buf, n * width, cudaMemcpyHostToDevice, 0));
        cudaCheck(cudaEventRecord(s->copied[s->next], 0));
        s->next ^= 1;
    }
    if (on_device)
        cuda_f16_to_bf16_inplace(dst, count);
}

void cuda_weight_upload(void *dst, const void *src, elem_type type, size_t count)
{
    upload(dst, src, type, count, 2);
}

void cuda_weight_upload_f32(void *dst, const void *src, elem_type type, size_t count)
{
    upload(dst, src, type, count, 4);
}
