/* 3x3 convolutions with stride 2 and padding 1 on small channels-last float32 batches: the forward
 * pass, the input gradient and the weight gradient, each a register-tiled matrix product whose
 * operand rows are gathered from the feature maps as it goes (no im2col buffer).
 *
 * Feature maps are [N][H][W][C] (channels-last), outputs [N][OH][OW][CO] with OH = (H + 1) / 2.
 * Weights are read through their four strides (o, i, kh, kw), so any layout PyTorch hands over works.
 * C and CO must be multiples of BLOCK (checked by the caller, learntolearn/nn/strided_conv.py).
 * Sums run in a fixed order that does not depend on the number of threads.
 */
#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef __AVX512F__
#define VW 16  /* floats per vector */
#define TILE 6 /* rows of the product per register tile */
#else
#define VW 8
#define TILE 3
#endif
#define VECS 4 /* vectors of columns per register tile */
#define BLOCK (VW * VECS)

typedef float vecf __attribute__((vector_size(VW * 4), aligned(4)));

static const float zero_row[1024] __attribute__((aligned(64)));

static inline vecf load(const float *p) { return *(const vecf *)p; }
static inline void store(float *p, vecf v) { *(vecf *)p = v; }
static inline vecf splat(float s) {
#if defined(__AVX512F__)
    return (vecf)_mm512_set1_ps(s);
#elif defined(__AVX__)
    return (vecf)_mm256_set1_ps(s);
#else
    vecf v;
    for (int l = 0; l < VW; l++) v[l] = s;
    return v;
#endif
}

/* acc[t][v] += a[t][k] * b[k][v * VW : (v + 1) * VW] for k < depth, t < TILE; a[t] rows are a_rows[t],
 * b rows are b_stride apart */
static inline void tile_product(vecf acc[TILE][VECS], const float *const a_rows[TILE], const float *b, int64_t b_stride,
                                int64_t depth) {
    for (int64_t k = 0; k < depth; k++) {
        vecf w[VECS];
        for (int v = 0; v < VECS; v++) w[v] = load(b + k * b_stride + v * VW);
        for (int t = 0; t < TILE; t++) {
            vecf a = splat(a_rows[t][k]);
            for (int v = 0; v < VECS; v++) acc[t][v] += a * w[v];
        }
    }
}

/* weight[o][i][kh][kw] (strides s) -> packed[tap][i][o] (forward, by_input) or packed[tap][o][i] (input gradient) */
static float *pack(const float *weight, const int64_t *s, int64_t C, int64_t CO, int by_input) {
    float *packed = aligned_alloc(64, (size_t)(9 * C * CO) * sizeof(float) + 64);
    int64_t rows = by_input ? C : CO, columns = by_input ? CO : C;
    for (int64_t tap = 0; tap < 9; tap++)
        for (int64_t r = 0; r < rows; r++)
            for (int64_t c = 0; c < columns; c++) {
                int64_t o = by_input ? c : r, i = by_input ? r : c;
                packed[(tap * rows + r) * columns + c] = weight[o * s[0] + i * s[1] + tap / 3 * s[2] + tap % 3 * s[3]];
            }
    return packed;
}

/* y[n][oy][ox][o] = bias[o] + sum over taps and i of x[n][2oy + kh - 1][2ox + kw - 1][i] * weight[o][i][kh][kw] */
void strided_conv_forward(const float *x, int64_t N, int64_t H, int64_t W, int64_t C, const float *weight,
                          const int64_t *weight_strides, int64_t CO, const float *bias, float *y, int threads) {
    int64_t OH = (H + 1) / 2, OW = (W + 1) / 2, P = N * OH * OW;
    float *packed = pack(weight, weight_strides, C, CO, 1);
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t p0 = 0; p0 < P; p0 += TILE) {
        for (int64_t ob = 0; ob < CO; ob += BLOCK) {
            vecf acc[TILE][VECS];
            for (int t = 0; t < TILE; t++)
                for (int v = 0; v < VECS; v++) acc[t][v] = bias ? load(bias + ob + v * VW) : (vecf){0};
            for (int tap = 0; tap < 9; tap++) {
                const float *rows[TILE];
                for (int t = 0; t < TILE; t++) {
                    int64_t p = p0 + t, n = p / (OH * OW), oy = p / OW % OH, ox = p % OW;
                    int64_t iy = 2 * oy + tap / 3 - 1, ix = 2 * ox + tap % 3 - 1;
                    rows[t] = p < P && iy >= 0 && iy < H && ix >= 0 && ix < W ? x + ((n * H + iy) * W + ix) * C : zero_row;
                }
                tile_product(acc, rows, packed + tap * C * CO + ob, CO, C);
            }
            for (int t = 0; t < TILE && p0 + t < P; t++)
                for (int v = 0; v < VECS; v++) store(y + (p0 + t) * CO + ob + v * VW, acc[t][v]);
        }
    }
    free(packed);
}

/* grad_x[n][iy][ix][i] = sum over (oy, ox, kh, kw) with 2oy + kh - 1 = iy, 2ox + kw - 1 = ix and o of
 * grad_y[n][oy][ox][o] * weight[o][i][kh][kw]. Input pixels of one parity class (iy % 2, ix % 2) share
 * their taps, so each class is one gathered product. */
void strided_conv_input_grad(const float *grad_y, int64_t N, int64_t H, int64_t W, int64_t C, const float *weight,
                             const int64_t *weight_strides, int64_t CO, float *grad_x, int threads) {
    int64_t OH = (H + 1) / 2, OW = (W + 1) / 2;
    float *packed = pack(weight, weight_strides, C, CO, 0);
    for (int py = 0; py < 2; py++)
        for (int px = 0; px < 2; px++) {
            int64_t ch = (H - py + 1) / 2, cw = (W - px + 1) / 2, count = N * ch * cw; /* pixels in the class */
#pragma omp parallel for num_threads(threads) schedule(static)
            for (int64_t q0 = 0; q0 < count; q0 += TILE) {
                int64_t n[TILE], iy[TILE], ix[TILE];
                for (int t = 0; t < TILE; t++) {
                    int64_t q = q0 + t < count ? q0 + t : count - 1;
                    n[t] = q / (ch * cw), iy[t] = py + 2 * (q / cw % ch), ix[t] = px + 2 * (q % cw);
                }
                for (int64_t ib = 0; ib < C; ib += BLOCK) {
                    vecf acc[TILE][VECS] = {{{0}}};
                    for (int kh = 1 - py; kh < 3; kh += 2)
                        for (int kw = 1 - px; kw < 3; kw += 2) {
                            const float *rows[TILE];
                            for (int t = 0; t < TILE; t++) {
                                int64_t oy = (iy[t] + 1 - kh) / 2, ox = (ix[t] + 1 - kw) / 2;
                                rows[t] = q0 + t < count && oy >= 0 && oy < OH && ox >= 0 && ox < OW
                                              ? grad_y + ((n[t] * OH + oy) * OW + ox) * CO
                                              : zero_row;
                            }
                            tile_product(acc, rows, packed + (kh * 3 + kw) * CO * C + ib, C, CO);
                        }
                    for (int t = 0; t < TILE && q0 + t < count; t++)
                        for (int v = 0; v < VECS; v++)
                            store(grad_x + ((n[t] * H + iy[t]) * W + ix[t]) * C + ib + v * VW, acc[t][v]);
                }
            }
        }
    free(packed);
}

/* grad_weight[o][i][kh][kw] = sum over n, oy, ox of grad_y[n][oy][ox][o] * x[n][2oy + kh - 1][2ox + kw - 1][i],
 * written through grad_weight's strides */
void strided_conv_weight_grad(const float *x, int64_t N, int64_t H, int64_t W, int64_t C, const float *grad_y,
                              int64_t CO, float *grad_weight, const int64_t *gs, int threads) {
    int64_t OH = (H + 1) / 2, OW = (W + 1) / 2, P = N * OH * OW, o_tiles = (CO + TILE - 1) / TILE;
    /* grad_y transposed to [o][p], so that a tile's TILE output channels broadcast from one row each */
    float *gt = malloc((size_t)(CO * P) * sizeof(float));
    for (int64_t p = 0; p < P; p++)
        for (int64_t o = 0; o < CO; o++) gt[o * P + p] = grad_y[p * CO + o];
    /* per tap, the output pixels whose input pixel lies inside the map, and that input pixel's row */
    int64_t *pixels = malloc((size_t)(9 * P) * sizeof(int64_t)), valid[9];
    const float **rows = malloc((size_t)(9 * P) * sizeof(float *));
    for (int tap = 0; tap < 9; tap++) {
        valid[tap] = 0;
        for (int64_t p = 0; p < P; p++) {
            int64_t n = p / (OH * OW), iy = 2 * (p / OW % OH) + tap / 3 - 1, ix = 2 * (p % OW) + tap % 3 - 1;
            if (iy >= 0 && iy < H && ix >= 0 && ix < W) {
                rows[tap * P + valid[tap]] = x + ((n * H + iy) * W + ix) * C;
                pixels[tap * P + valid[tap]++] = p;
            }
        }
    }
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t job = 0; job < 9 * o_tiles; job++) {
        int64_t tap = job / o_tiles, o0 = job % o_tiles * TILE;
        const float **tap_rows = rows + tap * P;
        const int64_t *tap_pixels = pixels + tap * P;
        float out[TILE][BLOCK] __attribute__((aligned(64)));
        for (int64_t ib = 0; ib < C; ib += BLOCK) {
            vecf acc[TILE][VECS] = {{{0}}};
            for (int64_t k = 0; k < valid[tap]; k++) {
                vecf xr[VECS];
                for (int v = 0; v < VECS; v++) xr[v] = load(tap_rows[k] + ib + v * VW);
                for (int t = 0; t < TILE; t++) {
                    vecf g = splat(o0 + t < CO ? gt[(o0 + t) * P + tap_pixels[k]] : 0.0f);
                    for (int v = 0; v < VECS; v++) acc[t][v] += g * xr[v];
                }
            }
            for (int t = 0; t < TILE && o0 + t < CO; t++) {
                for (int v = 0; v < VECS; v++) store(out[t] + v * VW, acc[t][v]);
                for (int64_t i = 0; i < BLOCK; i++)
                    grad_weight[(o0 + t) * gs[0] + (ib + i) * gs[1] + tap / 3 * gs[2] + tap % 3 * gs[3]] = out[t][i];
            }
        }
    }
    free(rows);
    free(pixels);
    free(gt);
}
