/* Training-mode BatchNorm, 2x2 max-pooling (stride 2, floor) and ReLU over a channels-last float32
 * batch, forward and backward, in a few passes over memory instead of PyTorch's many.
 *
 * x is laid out [rows][C] with rows = N*H*W (channels-last); pooled tensors are [N*Ho*Wo][C].
 * Statistics are accumulated in double, per chunk of rows, with a fixed chunking so that results
 * do not depend on the number of threads. A first block on few input channels (images) also takes
 * its 3x3 convolution in (the functions from patch_moments on). See learntolearn/nn/norm_pool.py.
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

/* as gradient_row, plus ucoef * u (the double backward's input gradient) */
static void gradient_row_u(const float *restrict x, const float *restrict grad_out, const float *restrict out,
                           const float *restrict position, float here, int64_t C, const float *restrict k,
                           const float *restrict slope, const float *restrict offset, const float *restrict u,
                           const float *restrict ucoef, float *restrict grad_x) {
#pragma omp simd
    for (int64_t c = 0; c < C; c++) {
        float upstream = grad_out[c];
        float g = (position[c] == here && (out[c] > 0.0f || __builtin_isnan(out[c]))) ? upstream : 0.0f;
        grad_x[c] = k[c] * g + (x[c] * slope[c] + offset[c]) + u[c] * ucoef[c];
    }
}

static void gradient_row_outside(const float *restrict x, int64_t C, const float *restrict slope,
                                 const float *restrict offset, const float *restrict u, const float *restrict ucoef,
                                 float *restrict grad_x) {
    for (int64_t c = 0; c < C; c++) grad_x[c] = x[c] * slope[c] + offset[c] + (u ? u[c] * ucoef[c] : 0.0f);
}

/* grad_x = k * (g_at_x - a - xhat * b), with k = weight * invstd, a = sum_g / M, b = sum_gx / M, written as
 * k * g_at_x + slope * x + offset (slope = -k * b * invstd, offset = -k * a - slope * mean); with u given
 * (not NULL), ucoef * u is added: the double backward's input gradient has that form too */
void input_gradient(const float *restrict x, const float *restrict grad_out, const float *restrict out,
                    const float *restrict position, int64_t N, int64_t H, int64_t W, int64_t C,
                    const float *restrict k, const float *restrict slope, const float *restrict offset,
                    float *restrict grad_x, const float *restrict u, const float *restrict ucoef, int threads) {
    int64_t Ho = H / 2, Wo = W / 2;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t n = 0; n < N; n++) {
        for (int64_t h = 0; h < H; h++) {
            for (int64_t w = 0; w < W; w++) {
                int64_t r = ((n * H + h) * W + w) * C;
                if (h < 2 * Ho && w < 2 * Wo) {
                    int64_t o = ((n * Ho + h / 2) * Wo + w / 2) * C;
                    float here = (float)((h & 1) * 2 + (w & 1));
                    if (u)
                        gradient_row_u(x + r, grad_out + o, out + o, position + o, here, C, k, slope, offset, u + r,
                                       ucoef, grad_x + r);
                    else
                        gradient_row(x + r, grad_out + o, out + o, position + o, here, C, k, slope, offset,
                                     grad_x + r);
                } else {
                    gradient_row_outside(x + r, C, slope, offset, u ? u + r : NULL, ucoef, grad_x + r);
                }
            }
        }
    }
}

static void upstream_row_sums(const float *restrict x, const float *restrict u, int64_t C, const float *restrict mean,
                              const float *restrict invstd, double *restrict acc_u, double *restrict acc_ux) {
#pragma omp simd
    for (int64_t c = 0; c < C; c++) {
        float v = u[c];
        acc_u[c] += v;
        acc_ux[c] += (double)(v * ((x[c] - mean[c]) * invstd[c]));
    }
}

static void chosen_upstream_row(const float *restrict u, const float *restrict grad_out, const float *restrict out,
                                const float *restrict position, float here, int64_t C, float *restrict u_chosen,
                                double *restrict acc_gu) {
#pragma omp simd
    for (int64_t c = 0; c < C; c++) {
        _Bool at = position[c] == here;
        float v = u[c];
        float g = (at && (out[c] > 0.0f || __builtin_isnan(out[c]))) ? grad_out[c] : 0.0f;
        u_chosen[c] = at ? v : u_chosen[c];
        acc_gu[c] += (double)(g * v);
    }
}

/* the sums the double backward needs, u being the gradient reaching grad_x: sum(u) and sum(u * xhat) over
 * every row, and over the windows u at the chosen entry (u_chosen, pooled) and sum(g * u_chosen), with
 * g = grad_out where out > 0; chunked by image (a fixed chunking: thread-count independent) */
void double_backward_sums(const float *x, const float *u, const float *grad_out, const float *out,
                          const float *position, int64_t N, int64_t H, int64_t W, int64_t C, const float *mean,
                          const float *invstd, float *u_chosen, double *sum_u, double *sum_uxhat, double *sum_gu,
                          int threads) {
    int64_t Ho = H / 2, Wo = W / 2;
    double *partial = calloc((size_t)CHUNKS * 3 * C, sizeof(double));
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t k = 0; k < CHUNKS; k++) {
        double *acc_u = partial + k * 3 * C, *acc_ux = acc_u + C, *acc_gu = acc_ux + C;
        for (int64_t n = chunk_start(N, k); n < chunk_start(N, k + 1); n++) {
            for (int64_t h = 0; h < H; h++) {
                for (int64_t w = 0; w < W; w++) {
                    int64_t r = ((n * H + h) * W + w) * C;
                    upstream_row_sums(x + r, u + r, C, mean, invstd, acc_u, acc_ux);
                    if (h < 2 * Ho && w < 2 * Wo) {
                        int64_t o = ((n * Ho + h / 2) * Wo + w / 2) * C;
                        chosen_upstream_row(u + r, grad_out + o, out + o, position + o,
                                            (float)((h & 1) * 2 + (w & 1)), C, u_chosen + o, acc_gu);
                    }
                }
            }
        }
    }
    for (int64_t c = 0; c < C; c++) {
        sum_u[c] = sum_uxhat[c] = sum_gu[c] = 0;
        for (int64_t k = 0; k < CHUNKS; k++) {
            sum_u[c] += partial[k * 3 * C + c];
            sum_uxhat[c] += partial[k * 3 * C + C + c];
            sum_gu[c] += partial[k * 3 * C + 2 * C + c];
        }
    }
    free(partial);
}

/* ---- A first block on few input channels: 3x3 convolution (padding 1, no bias) fused in as well. ----
 * Its output is recomputed from the small input image in every pass instead of being stored: xp is the
 * input zero-padded and channels-last, [N][H+2][W+2][Cin]; w is the weight as [9 * Cin][C] (tap-major). */

/* GCC/Clang vectors of VW floats: AVX-512 registers where compiled for them, else AVX registers (or SSE pairs) */
#ifdef __AVX512F__
#define VW 16
#else
#define VW 8
#endif
typedef float vecf __attribute__((vector_size(VW * 4)));
typedef float vec8 __attribute__((vector_size(32)));

static vecf loadv(const float *p) {
    vecf v;
    memcpy(&v, p, sizeof v);
    return v;
}

static void storev(float *p, vecf v) { memcpy(p, &v, sizeof v); }

static vec8 load8(const float *p) {
    vec8 v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* the offsets of a 3x3 x Cin patch's entries from its top-left entry, tap-major as the weight */
static void patch_offsets(int64_t row_stride, int64_t Cin, int64_t *offsets) {
    for (int64_t dy = 0; dy < 3; dy++)
        for (int64_t dx = 0; dx < 3; dx++)
            for (int64_t ci = 0; ci < Cin; ci++) offsets[(dy * 3 + dx) * Cin + ci] = dy * row_stride + dx * Cin + ci;
}

/* y[k][c] = sum_t patch_k[offsets[t]] * w[t][c] for the four pixels k of a 2x2 window (row-major), whose patches
 * start at patch, patch + Cin, patch + row_stride and patch + row_stride + Cin: 2 * VW channels of all four at a
 * time in registers, so that each weight vector loaded serves four pixels */
static void conv_window(const float *restrict patch, const int64_t *restrict offsets, int64_t taps, int64_t Cin,
                        int64_t row_stride, const float *restrict w, int64_t C, float *restrict y) {
    const float *p0 = patch, *p1 = patch + Cin, *p2 = patch + row_stride, *p3 = patch + row_stride + Cin;
    int64_t c0 = 0;
    for (; c0 + 2 * VW <= C; c0 += 2 * VW) {
        vecf a00 = {0}, a01 = {0}, a10 = {0}, a11 = {0}, a20 = {0}, a21 = {0}, a30 = {0}, a31 = {0};
        for (int64_t t = 0; t < taps; t++) {
            int64_t o = offsets[t];
            vecf w0 = loadv(w + t * C + c0), w1 = loadv(w + t * C + c0 + VW);
            vecf v0 = (vecf){0} + p0[o], v1 = (vecf){0} + p1[o], v2 = (vecf){0} + p2[o], v3 = (vecf){0} + p3[o];
            a00 += v0 * w0;
            a01 += v0 * w1;
            a10 += v1 * w0;
            a11 += v1 * w1;
            a20 += v2 * w0;
            a21 += v2 * w1;
            a30 += v3 * w0;
            a31 += v3 * w1;
        }
        storev(y + c0, a00);
        storev(y + c0 + VW, a01);
        storev(y + C + c0, a10);
        storev(y + C + c0 + VW, a11);
        storev(y + 2 * C + c0, a20);
        storev(y + 2 * C + c0 + VW, a21);
        storev(y + 3 * C + c0, a30);
        storev(y + 3 * C + c0 + VW, a31);
    }
    const float *pixels[4] = {p0, p1, p2, p3};
    for (int64_t k = 0; k < 4; k++)
        for (int64_t c = c0; c < C; c++) {
            float a = 0.0f;
            for (int64_t t = 0; t < taps; t++) a += pixels[k][offsets[t]] * w[t * C + c];
            y[k * C + c] = a;
        }
}

static const float *patch_at(const float *xp, int64_t H, int64_t W, int64_t Cin, int64_t n, int64_t h, int64_t w) {
    return xp + ((n * (H + 2) + h) * (W + 2) + w) * Cin;
}

/* the pixel at flat index p as (n, h, w), advanced without divisions */
typedef struct {
    int64_t n, h, w;
} pixel_t;

static pixel_t pixel_at(int64_t p, int64_t H, int64_t W) { return (pixel_t){p / (H * W), p / W % H, p % W}; }

static void next_pixel(pixel_t *q, int64_t H, int64_t W) {
    if (++q->w == W) {
        q->w = 0;
        if (++q->h == H) q->h = 0, q->n++;
    }
}

/* mean[taps] and covariance[taps][taps] of the 3x3 x Cin input patches over all N*H*W positions, from two
 * passes over the (small) input; the convolution's output then has mean w.mean and variance w'Cov w per
 * channel, so its statistics need no pass over the output */
void patch_moments(const float *xp, int64_t N, int64_t H, int64_t W, int64_t Cin, double *mean, double *cov,
                   int threads) {
    int64_t pixels = N * H * W, taps = 9 * Cin, *offsets = malloc((size_t)taps * sizeof(int64_t));
    patch_offsets((W + 2) * Cin, Cin, offsets);
    double *partial = calloc((size_t)CHUNKS * taps * taps, sizeof(double));
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t k = 0; k < CHUNKS; k++) {
        double *acc = partial + k * taps * taps;
        pixel_t q = pixel_at(chunk_start(pixels, k), H, W);
        for (int64_t p = chunk_start(pixels, k); p < chunk_start(pixels, k + 1); p++, next_pixel(&q, H, W)) {
            const float *patch = patch_at(xp, H, W, Cin, q.n, q.h, q.w);
            for (int64_t t = 0; t < taps; t++) acc[t] += patch[offsets[t]];
        }
    }
    for (int64_t t = 0; t < taps; t++) {
        double s = 0;
        for (int64_t k = 0; k < CHUNKS; k++) s += partial[k * taps * taps + t];
        mean[t] = s / (double)pixels;
    }
    memset(partial, 0, (size_t)CHUNKS * taps * taps * sizeof(double));
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t k = 0; k < CHUNKS; k++) {
        /* per block of BLOCK positions: centred patches transposed, [taps][BLOCK], then their dot products */
        double *acc = partial + k * taps * taps;
        float *d = calloc((size_t)taps * BLOCK, sizeof(float));
        int64_t end = chunk_start(pixels, k + 1);
        pixel_t q = pixel_at(chunk_start(pixels, k), H, W);
        for (int64_t p0 = chunk_start(pixels, k); p0 < end; p0 += BLOCK) {
            int64_t count = end - p0 < BLOCK ? end - p0 : BLOCK;
            for (int64_t b = 0; b < count; b++, next_pixel(&q, H, W)) {
                const float *patch = patch_at(xp, H, W, Cin, q.n, q.h, q.w);
                for (int64_t t = 0; t < taps; t++) d[t * BLOCK + b] = (float)(patch[offsets[t]] - mean[t]);
            }
            for (int64_t b = count; b < BLOCK; b++)
                for (int64_t t = 0; t < taps; t++) d[t * BLOCK + b] = 0.0f;
            for (int64_t t = 0; t < taps; t++)
                for (int64_t u = t; u < taps; u++) {
                    vec8 a = {0}; /* 8 lanes whatever VW: summed in this order, trained models stay the same */
                    for (int64_t b = 0; b < BLOCK; b += 8) a += load8(d + t * BLOCK + b) * load8(d + u * BLOCK + b);
                    float sum = a[0] + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7];
                    acc[t * taps + u] += sum;
                }
        }
        for (int64_t t = 0; t < taps; t++)
            for (int64_t u = 0; u < t; u++) acc[t * taps + u] = acc[u * taps + t];
        free(d);
    }
    for (int64_t t = 0; t < taps * taps; t++) {
        double s = 0;
        for (int64_t k = 0; k < CHUNKS; k++) s += partial[k * taps * taps + t];
        cov[t] = s / (double)pixels;
    }
    free(partial);
    free(offsets);
}

/* out = relu(maxpool(conv(x) * scale + shift)), keeping each window's chosen conv output and position */
void conv_normalise_pool_relu(const float *xp, int64_t N, int64_t H, int64_t W, int64_t Cin, const float *w,
                              int64_t C, const float *scale, const float *shift, float *out, float *chosen_x,
                              float *position, int threads) {
    int64_t Ho = H / 2, Wo = W / 2, taps = 9 * Cin, *offsets = malloc((size_t)taps * sizeof(int64_t));
    patch_offsets((W + 2) * Cin, Cin, offsets);
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t n = 0; n < N; n++) {
        float *y = malloc((size_t)4 * C * sizeof(float));
        for (int64_t i = 0; i < Ho; i++) {
            for (int64_t j = 0; j < Wo; j++) {
                conv_window(patch_at(xp, H, W, Cin, n, 2 * i, 2 * j), offsets, taps, Cin, (W + 2) * Cin, w, C, y);
                int64_t o = ((n * Ho + i) * Wo + j) * C;
                pool_row(y, y + C, y + 2 * C, y + 3 * C, C, scale, shift, out + o, chosen_x + o, position + o);
            }
        }
        free(y);
    }
    free(offsets);
}

/* sum over the pooled cells of g (grad_out where out > 0) times the input patch of the position each
 * channel's window chose, [taps][C]. With BatchNorm's backward written as k * g_at_y + slope * y + offset
 * (input_gradient), the convolution weight's gradient is k * this + slope * sum(patch y') + offset * sum(patch),
 * and the last two follow from patch_moments, so the convolution's output is not recomputed. */
void chosen_patch_gradient(const float *xp, const float *grad_out, const float *out, const float *position,
                           int64_t N, int64_t H, int64_t W, int64_t Cin, int64_t C, double *result, int threads) {
    int64_t Ho = H / 2, Wo = W / 2, cells = N * Ho * Wo, taps = 9 * Cin;
    int64_t *offsets = malloc((size_t)taps * sizeof(int64_t));
    patch_offsets((W + 2) * Cin, Cin, offsets);
    double *partial = calloc((size_t)CHUNKS * taps * C, sizeof(double));
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t chunk = 0; chunk < CHUNKS; chunk++) {
        double *acc = partial + chunk * taps * C;
        /* per block of BLOCK cells: g split by chosen position, [BLOCK][4][C], and the four patches [BLOCK][4][taps] */
        float *split = malloc((size_t)BLOCK * 4 * (C + taps) * sizeof(float)), *values = split + BLOCK * 4 * C;
        int64_t end = chunk_start(cells, chunk + 1);
        pixel_t q = pixel_at(chunk_start(cells, chunk), Ho, Wo);
        for (int64_t c0 = chunk_start(cells, chunk); c0 < end; c0 += BLOCK) {
            int64_t count = end - c0 < BLOCK ? end - c0 : BLOCK;
            for (int64_t b = 0; b < count; b++, next_pixel(&q, Ho, Wo)) {
                int64_t o = (c0 + b) * C;
                for (int64_t k = 0; k < 4; k++) {
                    const float *patch = patch_at(xp, H, W, Cin, q.n, 2 * q.h + k / 2, 2 * q.w + k % 2);
                    for (int64_t t = 0; t < taps; t++) values[(b * 4 + k) * taps + t] = patch[offsets[t]];
                    float here = (float)k, *g = split + (b * 4 + k) * C;
#pragma omp simd
                    for (int64_t c = 0; c < C; c++) {
                        float upstream = grad_out[o + c], o_c = out[o + c];
                        g[c] = (position[o + c] == here && (o_c > 0.0f || __builtin_isnan(o_c))) ? upstream : 0.0f;
                    }
                }
            }
            for (int64_t t = 0; t < taps; t++) {
                int64_t c1 = 0;
                if (t % 3 == 0) /* taps = 9 * Cin: three taps at a time, each g vector loaded serving three */
                    for (; c1 + 2 * VW <= C; c1 += 2 * VW) {
                        vecf a00 = {0}, a01 = {0}, a10 = {0}, a11 = {0}, a20 = {0}, a21 = {0};
                        for (int64_t r = 0; r < count * 4; r++) {
                            const float *v = values + r * taps + t, *g = split + r * C + c1;
                            vecf g0 = loadv(g), g1 = loadv(g + VW);
                            vecf v0 = (vecf){0} + v[0], v1 = (vecf){0} + v[1], v2 = (vecf){0} + v[2];
                            a00 += v0 * g0;
                            a01 += v0 * g1;
                            a10 += v1 * g0;
                            a11 += v1 * g1;
                            a20 += v2 * g0;
                            a21 += v2 * g1;
                        }
                        float sums[6 * VW];
                        storev(sums, a00);
                        storev(sums + VW, a01);
                        storev(sums + 2 * VW, a10);
                        storev(sums + 3 * VW, a11);
                        storev(sums + 4 * VW, a20);
                        storev(sums + 5 * VW, a21);
                        for (int64_t j = 0; j < 3; j++)
                            for (int64_t c = 0; c < 2 * VW; c++) acc[(t + j) * C + c1 + c] += sums[2 * VW * j + c];
                    }
                else /* the channels past the last whole block of 2 * VW, for the other two taps of the three */
                    c1 = C - C % (2 * VW);
                for (int64_t c = c1; c < C; c++) {
                    float a = 0.0f;
                    for (int64_t r = 0; r < count * 4; r++) a += values[r * taps + t] * split[r * C + c];
                    acc[t * C + c] += a;
                }
            }
        }
        free(split);
    }
    for (int64_t t = 0; t < taps * C; t++) {
        double s = 0;
        for (int64_t chunk = 0; chunk < CHUNKS; chunk++) s += partial[chunk * taps * C + t];
        result[t] = s;
    }
    free(partial);
    free(offsets);
}
