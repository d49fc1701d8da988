// Times cuBLASLt's heuristic candidates for out[n][rows] = x[n][cols] . w[rows][cols]^T, bf16, at small n.
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cstdio>
#include <vector>
#define CK(x) do { auto e_ = (x); if ((int)e_) { printf("err %d at %s:%d\n", (int)e_, __FILE__, __LINE__); exit(1);} } while (0)
int main() {
  cublasLtHandle_t lt; CK(cublasLtCreate(&lt));
  size_t wsb = 32 << 20; void *ws; CK(cudaMalloc(&ws, wsb));
  int shapes[][2] = {{4096, 6144}, {4096, 4096}, {4096, 14336}, {14336, 4096}, {4096, 128256}};
  int ns[] = {32, 64};
  void *w, *x, *o; CK(cudaMalloc(&w, (size_t)4096 * 128256 * 2)); CK(cudaMalloc(&x, 64 * 14336 * 2)); CK(cudaMalloc(&o, (size_t)64 * 128256 * 4));
  CK(cudaMemset(w, 0, (size_t)4096 * 128256 * 2)); CK(cudaMemset(x, 0, 64 * 14336 * 2));
  cudaEvent_t a, b; cudaEventCreate(&a); cudaEventCreate(&b);
  for (int n : ns) for (auto &s : shapes) {
    int cols = s[0], rows = s[1];
    cudaDataType_t ot = CUDA_R_16BF;
    cublasLtMatmulDesc_t op; CK(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t T = CUBLAS_OP_T, N = CUBLAS_OP_N;
    CK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &T, sizeof T));
    CK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &N, sizeof N));
    cublasLtMatrixLayout_t la, lb, lc;
    CK(cublasLtMatrixLayoutCreate(&la, CUDA_R_16BF, cols, rows, cols));
    CK(cublasLtMatrixLayoutCreate(&lb, CUDA_R_16BF, cols, n, cols));
    CK(cublasLtMatrixLayoutCreate(&lc, ot, rows, n, rows));
    cublasLtMatmulPreference_t pref; CK(cublasLtMatmulPreferenceCreate(&pref));
    CK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsb, sizeof wsb));
    cublasLtMatmulHeuristicResult_t res[32]; int found = 0;
    CK(cublasLtMatmulAlgoGetHeuristic(lt, op, la, lb, lc, lc, pref, 32, res, &found));
    float one = 1, zero = 0;
    printf("n=%d cols=%d rows=%d: %d candidates (MB %.1f)\n", n, cols, rows, found, rows * (double)cols * 2 / 1e6);
    for (int i = 0; i < found; i++) {
      for (int r = 0; r < 3; r++)
        cublasLtMatmul(lt, op, &one, w, la, x, lb, &zero, o, lc, o, lc, &res[i].algo, ws, wsb, 0);
      if (cudaDeviceSynchronize()) { printf("  %2d failed\n", i); cudaGetLastError(); continue; }
      const int reps = 20; cudaEventRecord(a);
      for (int r = 0; r < reps; r++)
        cublasLtMatmul(lt, op, &one, w, la, x, lb, &zero, o, lc, o, lc, &res[i].algo, ws, wsb, 0);
      cudaEventRecord(b); cudaEventSynchronize(b); float ms; cudaEventElapsedTime(&ms, a, b);
      double us = ms * 1e3 / reps;
      int tile = 0, splitk = 0, stages = 0; size_t sz;
      cublasLtMatmulAlgoConfigGetAttribute(&res[i].algo, CUBLASLT_ALGO_CONFIG_TILE_ID, &tile, sizeof tile, &sz);
      cublasLtMatmulAlgoConfigGetAttribute(&res[i].algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &splitk, sizeof splitk, &sz);
      cublasLtMatmulAlgoConfigGetAttribute(&res[i].algo, CUBLASLT_ALGO_CONFIG_STAGES_ID, &stages, sizeof stages, &sz);
      printf("  %2d %8.1f us %6.2f TB/s tile %d splitk %d stages %d ws %zu\n", i, us, rows * (double)cols * 2 / us / 1e6, tile, splitk, stages, res[i].workspaceSize);
    }
  }
}
