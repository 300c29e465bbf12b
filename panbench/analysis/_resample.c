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
 * Releases the GIL while it adds.  A block of PB_BLOCK resamples at a time: their counts of each image, then
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

static PyMethodDef methods[] = {
    {"sums", py_sums, METH_VARARGS, "The resampled per-category sums of resamples lo..hi-1, exact (int64)."},
    {"use_avx2", pb_use_avx2, METH_VARARGS, "Switch the AVX2 loop off or on (tests)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_resample", "The bootstrap's resampled sums in C.", -1,
                                    methods};

PyMODINIT_FUNC PyInit__resample(void) {
    PB_AVX2_INIT();
    return PyModule_Create(&module);
}
