/* panbench.analysis._resample: the bootstrap's resampled sums, in C, exact.
 *
 *   use_avx2(flag) -> bool
 *       The tests switch the AVX2 loop off and on; both give the same sums.
 *
 *   sums(draws, n_images, indptr, cols, vals, out, k, lo, hi)
 *       For each resample r in lo..hi-1: out[r, :] = the sum over j of row draws[r, j] of the per-image sums,
 *       given sparse (CSR: image i's nonzero entries are cols/vals[indptr[i]:indptr[i + 1]], int64); out is
 *       R x k int64, draws R x n_images int64 (each in 0..n_images-1).  Integer addition: the order does not
 *       change a bit, so the resamples split across threads (lo, hi) give the sums of one pass.  The caller
 *       checks that no sum can overflow (resample.py: n_images times the largest entry below 2^62).
 *
 *   generator(state) -> bytearray | None
 *       numpy's Generator(PCG64(SeedSequence(seed))) before its first draw, as the bytes draws() advances: state is
 *       the 4 little-endian uint64 words of SeedSequence(seed).generate_state(4, uint64) (resample.py computes them
 *       without numpy.random).  None where this compiler has no 128-bit integers (the caller then asks numpy).
 *
 *   draws(generator, n_images, out)
 *       Fills out (int64; R x n_images in C order for the bootstrap) with the generator's next
 *       integers(0, n_images, size=(R, n_images)), bit for bit, and advances the generator (in place) past them, as
 *       numpy's Generator does: calls on consecutive parts of an array give the numbers of one call on the whole.
 *       PCG64 is the 128-bit LCG with the XSL-RR output (each 64-bit output gives two 32-bit draws, low half first;
 *       an unused high half is kept for the next draw), and a draw below 2^32 takes Lemire's multiply-and-reject as
 *       numpy's buffered_bounded_lemire_uint32 does.
 *
 * Releases the GIL while it adds or draws.  A block of PB_BLOCK resamples at a time: their counts of each image, then
 * for each image's nonzeros (a handful of categories: the sums are kept sparse) value times the block's counts
 * added into that category's row of the block, PB_BLOCK independent additions (AVX2 where the CPU has it).
 */
#include "_common.h" /* the AVX2 switch, from panbench/pq */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PB_BLOCK 32 /* resamples summed together */

/* acc[col][b] += wt[i][b] * value, for every nonzero (col, value) of every image i */
#define PB_ADD_BLOCK                                                                                       \
    for (Py_ssize_t i = 0; i < n; i++) {                                                                   \
        const int32_t *w = wt + i * PB_BLOCK;                                                              \
        for (int64_t e = indptr[i]; e < indptr[i + 1]; e++) {                                              \
            const int64_t v = vals[e];                                                                     \
            int64_t *a = acc + cols[e] * PB_BLOCK;                                                         \
            for (Py_ssize_t b = 0; b < PB_BLOCK; b++) a[b] += (int64_t)w[b] * v;                           \
        }                                                                                                  \
    }
static void add_block(Py_ssize_t n, const int64_t *indptr, const int64_t *cols, const int64_t *vals,
                      const int32_t *wt, int64_t *acc) {
    PB_ADD_BLOCK
}
#if PB_AVX2
__attribute__((target("avx2"))) static void add_block_avx2(Py_ssize_t n, const int64_t *indptr, const int64_t *cols,
                                                           const int64_t *vals, const int32_t *wt, int64_t *acc) {
    PB_ADD_BLOCK
}
#else
static void add_block_avx2(Py_ssize_t n, const int64_t *indptr, const int64_t *cols, const int64_t *vals,
                           const int32_t *wt, int64_t *acc) {}
#endif

static PyObject *py_sums(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer bd, bp, bc, bv, bo;
    Py_ssize_t n, k, lo, hi;
    if (!PyArg_ParseTuple(args, "y*ny*y*y*w*nnn", &bd, &n, &bp, &bc, &bv, &bo, &k, &lo, &hi)) return NULL;
    PyObject *result = NULL;
    const Py_ssize_t rows = n > 0 ? bd.len / 8 / n : 0, nnz = bc.len / 8;
    const int64_t *draws = bd.buf, *indptr = bp.buf, *cols = bc.buf, *vals = bv.buf;
    int64_t *out = bo.buf;
    int ok = n > 0 && n < INT32_MAX && k > 0 && bd.len == rows * n * 8 && bp.len == (n + 1) * 8 && bv.len == bc.len &&
             bo.len == rows * k * 8 && 0 <= lo && lo <= hi && hi <= rows && indptr[0] == 0 && indptr[n] == nnz;
    for (Py_ssize_t i = 0; ok && i < n; i++) ok = indptr[i] <= indptr[i + 1];
    for (Py_ssize_t e = 0; ok && e < nnz; e++) ok = 0 <= cols[e] && cols[e] < k;
    for (Py_ssize_t e = 0; ok && e < (hi - lo) * n; e++) ok = 0 <= draws[lo * n + e] && draws[lo * n + e] < n;
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "sums: expected R x n_images draws in 0..n_images-1, a CSR of n_images "
                                          "rows with columns in 0..k-1, and an R x k int64 out");
        goto done;
    }
    int fail = 0;
    Py_BEGIN_ALLOW_THREADS
    /* a block of resamples at a time: their counts image-major (wt[i][b], counted from the draws) and their sums
     * category-major (acc[col][b]), so that each nonzero of an image adds its value times the block's counts of
     * that image into one contiguous row: independent additions the compiler vectorizes */
    int64_t *acc = malloc((size_t)k * PB_BLOCK * 8);
    int32_t *wt = malloc((size_t)n * PB_BLOCK * 4);
    fail = !acc || !wt;
    for (Py_ssize_t r0 = lo; !fail && r0 < hi; r0 += PB_BLOCK) {
        const Py_ssize_t nb = hi - r0 < PB_BLOCK ? hi - r0 : PB_BLOCK;
        memset(wt, 0, (size_t)n * PB_BLOCK * 4);
        memset(acc, 0, (size_t)k * PB_BLOCK * 8);
        for (Py_ssize_t b = 0; b < nb; b++) {
            const int64_t *d = draws + (r0 + b) * n;
            for (Py_ssize_t j = 0; j < n; j++) wt[d[j] * PB_BLOCK + b]++;
        }
        if (PB_AVX2 && pb_have_avx2)
            add_block_avx2(n, indptr, cols, vals, wt, acc);
        else
            add_block(n, indptr, cols, vals, wt, acc);
        for (Py_ssize_t b = 0; b < nb; b++)
            for (Py_ssize_t c = 0; c < k; c++) out[(r0 + b) * k + c] = acc[c * PB_BLOCK + b];
    }
    free(acc);
    free(wt);
    Py_END_ALLOW_THREADS
    if (fail) {
        PyErr_NoMemory();
        goto done;
    }
    result = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&bd);
    PyBuffer_Release(&bp);
    PyBuffer_Release(&bc);
    PyBuffer_Release(&bv);
    PyBuffer_Release(&bo);
    return result;
}

#ifdef __SIZEOF_INT128__
typedef unsigned __int128 pb_u128;
typedef struct {
    pb_u128 state, inc;
    uint32_t half; /* the high half of the last 64-bit output, not yet used */
    int has_half;
} pb_pcg64;

static const pb_u128 PB_PCG_MULT = ((pb_u128)2549297995355413924ULL << 64) + 4865540595714422341ULL;

static inline uint64_t pcg64_next64(pb_pcg64 *g) {
    g->state = g->state * PB_PCG_MULT + g->inc; /* step, then the output of the new state */
    const uint64_t x = (uint64_t)(g->state >> 64) ^ (uint64_t)g->state;
    const unsigned rot = (unsigned)(g->state >> 122);
    return (x >> rot) | (x << ((-rot) & 63));
}

static inline uint32_t pcg64_next32(pb_pcg64 *g) {
    if (g->has_half) {
        g->has_half = 0;
        return g->half;
    }
    const uint64_t v = pcg64_next64(g);
    g->half = (uint32_t)(v >> 32);
    g->has_half = 1;
    return (uint32_t)v;
}

/* a draw in 0..rng (rng < 2^32 - 1): Lemire's multiply-and-reject, numpy's buffered_bounded_lemire_uint32 */
static inline uint32_t bounded_lemire32(pb_pcg64 *g, uint32_t rng) {
    const uint32_t excl = rng + 1;
    uint64_t m = (uint64_t)pcg64_next32(g) * excl;
    uint32_t leftover = (uint32_t)m;
    if (leftover < excl) {
        const uint32_t threshold = (UINT32_MAX - rng) % excl;
        while (leftover < threshold) {
            m = (uint64_t)pcg64_next32(g) * excl;
            leftover = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}
#endif

static PyObject *py_generator(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer bs;
    if (!PyArg_ParseTuple(args, "y*", &bs)) return NULL;
    PyObject *result = NULL;
    if (bs.len != 32) {
        PyErr_SetString(PyExc_ValueError, "generator: expected 32 bytes of state");
        goto done;
    }
#ifdef __SIZEOF_INT128__
    uint64_t w[4] = {0, 0, 0, 0};
    const unsigned char *bytes = bs.buf;
    for (int i = 0; i < 32; i++) w[i / 8] |= (uint64_t)bytes[i] << (8 * (i % 8)); /* little-endian words */
    /* numpy's pcg64_set_seed: initstate = w0:w1, initseq = w2:w3; srandom: state 0, inc 2 initseq + 1, step,
     * state += initstate, step */
    pb_pcg64 g = {0, (((pb_u128)w[2] << 64 | w[3]) << 1) | 1, 0, 0};
    g.state = g.state * PB_PCG_MULT + g.inc;
    g.state += (pb_u128)w[0] << 64 | w[1];
    g.state = g.state * PB_PCG_MULT + g.inc;
    result = PyByteArray_FromStringAndSize((const char *)&g, sizeof g);
#else
    result = Py_NewRef(Py_None);
#endif
done:
    PyBuffer_Release(&bs);
    return result;
}

static PyObject *py_draws(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer bg, bo;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "w*nw*", &bg, &n, &bo)) return NULL;
    PyObject *result = NULL;
#ifdef __SIZEOF_INT128__
    if (bg.len != (Py_ssize_t)sizeof(pb_pcg64) || n <= 0 || (uint64_t)n > UINT32_MAX || bo.len % 8) {
        PyErr_SetString(PyExc_ValueError, "draws: expected a generator(), 0 < n_images < 2^32 and an int64 out");
        goto done;
    }
    pb_pcg64 g; /* copied: the bytearray's buffer may not be aligned for 128-bit words */
    memcpy(&g, bg.buf, sizeof g);
    int64_t *out = bo.buf;
    const Py_ssize_t total = bo.len / 8;
    Py_BEGIN_ALLOW_THREADS
    const uint32_t rng = (uint32_t)(n - 1);
    if (rng == 0)
        memset(out, 0, (size_t)total * 8); /* numpy draws nothing for a range of one */
    else
        for (Py_ssize_t e = 0; e < total; e++) out[e] = bounded_lemire32(&g, rng);
    Py_END_ALLOW_THREADS
    memcpy(bg.buf, &g, sizeof g);
    result = Py_NewRef(Py_None);
#else
    PyErr_SetString(PyExc_ValueError, "draws: this build has no 128-bit integers (generator() gave None)");
#endif
done:
    PyBuffer_Release(&bg);
    PyBuffer_Release(&bo);
    return result;
}

static PyMethodDef methods[] = {
    {"sums", py_sums, METH_VARARGS, "The resampled per-category sums of resamples lo..hi-1, exact (int64)."},
    {"generator", py_generator, METH_VARARGS, "numpy's PCG64 Generator of a seed's state, before its first draw."},
    {"draws", py_draws, METH_VARARGS, "The generator's next integers(0, n_images, size=out.shape), in place."},
    {"use_avx2", pb_use_avx2, METH_VARARGS, "Switch the AVX2 loop off or on (tests)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_resample", "The bootstrap's resampled sums in C.", -1,
                                    methods};

PyMODINIT_FUNC PyInit__resample(void) {
    PB_AVX2_INIT();
    return PyModule_Create(&module);
}
