/* Training-mode BatchNorm, 2x2 max-pooling (stride 2, floor) and ReLU over a channels-last float32
 * batch, forward and backward, in a few passes over memory instead of PyTorch's many.
 *
 * x is laid out [rows][C] with rows = N*H*W (channels-last); pooled tensors are [N*Ho*Wo][C].
 * Statistics are accumulated in double, per chunk of rows, with a fixed chunking so that results
 * do not depend on the number of threads. See learntolearn/nn/norm_pool.py for the formulas.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHUNKS 64

static int64_t chunk_start(int64_t total, int64_t chunk) { return total * chunk / CHUNKS; }

/* mean and 1/sqrt(var + eps) per channel (biased var), from two passes over x */
void batch_statistics(const float *x, int64_t rows, int64_t C, double eps, float *mean, float *var_out,
                      float *invstd, int threads) {
    double *partial = calloc((size_t)CHUNKS * C, sizeof(double));
    double *mean_d = calloc((size_t)C, sizeof(double));
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t k = 0; k < CHUNKS; k++) {
        double *acc = partial + k * C;
        for (int64_t r = chunk_start(rows, k); r < chunk_start(rows, k + 1); r++) {
            const float *row = x + r * C;
            for (int64_t c = 0; c < C; c++) acc[c] += row[c];
        }
    }
    for (int64_t k = 0; k < CHUNKS; k++)
        for (int64_t c = 0; c < C; c++) mean_d[c] += partial[k * C + c];
    for (int64_t c = 0; c < C; c++) mean_d[c] /= (double)rows;
    memset(partial, 0, (size_t)CHUNKS * C * sizeof(double));
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t k = 0; k < CHUNKS; k++) {
        double *acc = partial + k * C;
        for (int64_t r = chunk_start(rows, k); r < chunk_start(rows, k + 1); r++) {
            const float *row = x + r * C;
            for (int64_t c = 0; c < C; c++) {
                double d = row[c] - mean_d[c];
                acc[c] += d * d;
            }
        }
    }
    for (int64_t c = 0; c < C; c++) {
        double v = 0;
        for (int64_t k = 0; k < CHUNKS; k++) v += partial[k * C + c];
        v /= (double)rows;
        mean[c] = (float)mean_d[c];
        var_out[c] = (float)v;
        invstd[c] = (float)(1.0 / sqrt(v + eps));
    }
    free(partial);
    free(mean_d);
}

/* one 2x2 window per channel: a later entry wins if its y is larger or NaN (PyTorch's max-pooling rule) */
static void pool_row(const float *restrict x0, const float *restrict x1, const float *restrict x2,
                     const float *restrict x3, int64_t C, const float *restrict scale, const float *restrict shift,
                     float *restrict out, float *restrict chosen_x, float *restrict position) {
#pragma omp simd
    for (int64_t c = 0; c < C; c++) {
        float s = scale[c], t = shift[c], v1 = x1[c], v2 = x2[c], v3 = x3[c]; /* unconditional loads vectorise */
        float best = x0[c] * s + t, best_x = x0[c], at = 0.0f;
        float y = v1 * s + t;
        _Bool take = (y > best) || __builtin_isnan(y);
        best = take ? y : best;
        best_x = take ? v1 : best_x;
        at = take ? 1.0f : at;
        y = v2 * s + t;
        take = (y > best) || __builtin_isnan(y);
        best = take ? y : best;
        best_x = take ? v2 : best_x;
        at = take ? 2.0f : at;
        y = v3 * s + t;
        take = (y > best) || __builtin_isnan(y);
        best = take ? y : best;
        best_x = take ? v3 : best_x;
        at = take ? 3.0f : at;
        out[c] = (best > 0.0f || __builtin_isnan(best)) ? best : 0.0f;
        chosen_x[c] = best_x;
        position[c] = at;
    }
}

/* out = relu(maxpool(x * scale + shift)); keeps the chosen x and its position (0..3, row-major, as a float) */
void normalise_pool_relu(const float *x, int64_t N, int64_t H, int64_t W, int64_t C, const float *scale,
                         const float *shift, float *out, float *chosen_x, float *position, int threads) {
    int64_t Ho = H / 2, Wo = W / 2;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t n = 0; n < N; n++) {
        for (int64_t i = 0; i < Ho; i++) {
            for (int64_t j = 0; j < Wo; j++) {
                const float *x0 = x + ((n * H + 2 * i) * W + 2 * j) * C;
                int64_t o = ((n * Ho + i) * Wo + j) * C;
                pool_row(x0, x0 + C, x0 + W * C, x0 + W * C + C, C, scale, shift, out + o, chosen_x + o, position + o);
            }
        }
    }
}

static void sums_row(const float *restrict grad_out, const float *restrict out, const float *restrict chosen_x,
                     int64_t C, const float *restrict mean, const float *restrict invstd, float *restrict block_g,
                     float *restrict block_gx) {
#pragma omp simd
    for (int64_t c = 0; c < C; c++) {
        float upstream = grad_out[c], o = out[c];
        float g = (o > 0.0f || __builtin_isnan(o)) ? upstream : 0.0f; /* ReLU passes where out > 0 */
        block_g[c] += g;
        block_gx[c] += g * ((chosen_x[c] - mean[c]) * invstd[c]);
    }
}

/* sums over the pooled cells of g = grad_out where out > 0: sum(g) and sum(g * xhat of the chosen x);
 * single precision over blocks of BLOCK rows (which vectorises), double across blocks */
#define BLOCK 32
void gradient_sums(const float *grad_out, const float *out, const float *chosen_x, int64_t pooled_rows, int64_t C,
                   const float *mean, const float *invstd, double *sum_g, double *sum_gx, int threads) {
    double *partial = calloc((size_t)CHUNKS * 2 * C, sizeof(double));
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t k = 0; k < CHUNKS; k++) {
        double *acc_g = partial + k * 2 * C, *acc_gx = acc_g + C;
        float *block = malloc((size_t)2 * C * sizeof(float));
        int64_t end = chunk_start(pooled_rows, k + 1);
        for (int64_t r0 = chunk_start(pooled_rows, k); r0 < end; r0 += BLOCK) {
            memset(block, 0, (size_t)2 * C * sizeof(float));
            for (int64_t r = r0; r < r0 + BLOCK && r < end; r++)
                sums_row(grad_out + r * C, out + r * C, chosen_x + r * C, C, mean, invstd, block, block + C);
            for (int64_t c = 0; c < C; c++) {
                acc_g[c] += block[c];
                acc_gx[c] += block[C + c];
            }
        }
        free(block);
    }
    for (int64_t c = 0; c < C; c++) {
        sum_g[c] = 0;
        sum_gx[c] = 0;
        for (int64_t k = 0; k < CHUNKS; k++) {
            sum_g[c] += partial[k * 2 * C + c];
            sum_gx[c] += partial[k * 2 * C + C + c];
        }
    }
    free(partial);
}

/* one row of grad_x: slope * x + offset, plus k * g where the window chose this entry (g = 0 outside windows) */
static void gradient_row(const float *restrict x, const float *restrict grad_out, const float *restrict out,
                         const float *restrict position, float here, int64_t C, const float *restrict k,
                         const float *restrict slope, const float *restrict offset, float *restrict grad_x) {
#pragma omp simd
    for (int64_t c = 0; c < C; c++) {
        float upstream = grad_out[c];
        float g = (position[c] == here && (out[c] > 0.0f || __builtin_isnan(out[c]))) ? upstream : 0.0f;
        grad_x[c] = k[c] * g + (x[c] * slope[c] + offset[c]);
    }
}

static void gradient_row_outside(const float *restrict x, int64_t C, const float *restrict slope,
                                 const float *restrict offset, float *restrict grad_x) {
    for (int64_t c = 0; c < C; c++) grad_x[c] = x[c] * slope[c] + offset[c];
}

/* grad_x = k * (g_at_x - a - xhat * b), with k = weight * invstd, a = sum_g / M, b = sum_gx / M, written as
 * k * g_at_x + slope * x + offset (slope = -k * b * invstd, offset = -k * a - slope * mean) */
void input_gradient(const float *restrict x, const float *restrict grad_out, const float *restrict out,
                    const float *restrict position, int64_t N, int64_t H, int64_t W, int64_t C,
                    const float *restrict k, const float *restrict slope, const float *restrict offset,
                    float *restrict grad_x, int threads) {
    int64_t Ho = H / 2, Wo = W / 2;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t n = 0; n < N; n++) {
        for (int64_t h = 0; h < H; h++) {
            for (int64_t w = 0; w < W; w++) {
                int64_t r = ((n * H + h) * W + w) * C;
                if (h < 2 * Ho && w < 2 * Wo) {
                    int64_t o = ((n * Ho + h / 2) * Wo + w / 2) * C;
                    gradient_row(x + r, grad_out + o, out + o, position + o, (float)((h & 1) * 2 + (w & 1)), C, k,
                                 slope, offset, grad_x + r);
                } else {
                    gradient_row_outside(x + r, C, slope, offset, grad_x + r);
                }
            }
        }
    }
}
