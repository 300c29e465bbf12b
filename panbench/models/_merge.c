/* panbench.models._merge: mask-wise merging's per-query passes over the pixels (panbench/models/postprocess.py), in C.
 *
 *   mask_stats(m, q, n, thr, area, total, bits)
 *       One pass over q masks of n probabilities each (m: q * n contiguous float32): each mask's pixels above thr
 *       (area: q int64), the sum of their probabilities (total: q float64; exact when thr >= 0.5 and n < 2^29,
 *       every term then a multiple of 2^-24 below 1, so in any order) and those
 *       pixels as bits (bits: q rows of ceil(n / 64) uint64 words, bit p % 64 of word p / 64).  Releases the GIL.
 *   mask_paint(bits, q, n, order, need, codes, pan)
 *       The queries ``order`` (int64, in merging order) painted into pan (n int32) where their bits lie and no
 *       earlier painted query's do, each only when that count is not 0 and, rounded to float32, at least need[query]
 *       (float32); codes[query] (int32) is what a painted pixel gets, with codes[query] < 0 meaning a thing of
 *       label -codes[query] - 1: that label + (its rank among the painted things, from 1) * 1000.  Returns the queries painted, in order,
 *       as a bytes object of int64.  Releases the GIL.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define INSTANCE_OFFSET 1000

/* The bits of the len (<= 64) values x above thr, and the sum of those values in float64 (exact: see mask_stats) */
static double word_stats(const float *x, Py_ssize_t len, float thr, uint64_t *bits) {
    uint64_t word = 0;
    double sum = 0.0;
    Py_ssize_t p = 0;
#ifdef __SSE2__
    if (len == 64) {
        const __m128 t = _mm_set1_ps(thr);
        __m128d a0 = _mm_setzero_pd(), a1 = _mm_setzero_pd();
        for (int j = 0; j < 16; j++) {
            __m128 v = _mm_loadu_ps(x + 4 * j), c = _mm_cmpgt_ps(v, t), on = _mm_and_ps(v, c);
            word |= (uint64_t)_mm_movemask_ps(c) << (4 * j);
            a0 = _mm_add_pd(a0, _mm_cvtps_pd(on));
            a1 = _mm_add_pd(a1, _mm_cvtps_pd(_mm_movehl_ps(on, on)));
        }
        double lanes[2];
        _mm_storeu_pd(lanes, _mm_add_pd(a0, a1));
        *bits = word;
        return lanes[0] + lanes[1];
    }
#endif
    for (; p < len; p++) {
        int on = x[p] > thr;
        word |= (uint64_t)on << p;
        sum += on ? (double)x[p] : 0.0;
    }
    *bits = word;
    return sum;
}

static PyObject *py_mask_stats(PyObject *self, PyObject *args) {
    Py_buffer mb, ab, tb, bb;
    Py_ssize_t q, n;
    float thr;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nnfw*w*w*", &mb, &q, &n, &thr, &ab, &tb, &bb)) return NULL;
    Py_ssize_t words = (n + 63) / 64;
    if (q < 0 || n < 0 || mb.len != 4 * q * n || ab.len != 8 * q || tb.len != 8 * q || bb.len != 8 * q * words ||
        !PyBuffer_IsContiguous(&mb, 'C') || !PyBuffer_IsContiguous(&ab, 'C') || !PyBuffer_IsContiguous(&tb, 'C') ||
        !PyBuffer_IsContiguous(&bb, 'C')) {
        PyBuffer_Release(&mb);
        PyBuffer_Release(&ab);
        PyBuffer_Release(&tb);
        PyBuffer_Release(&bb);
        PyErr_SetString(PyExc_ValueError, "mask_stats: give q * n contiguous float32 values, q int64 areas, q float64 "
                                          "sums and q * ceil(n / 64) uint64 words");
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t k = 0; k < q; k++) {
        const float *row = (const float *)mb.buf + k * n;
        uint64_t *out = (uint64_t *)bb.buf + k * words;
        int64_t count = 0;
        double sum = 0.0;
        for (Py_ssize_t w = 0; w < words; w++) {
            const float *x = row + w * 64;
            Py_ssize_t len = n - w * 64 < 64 ? n - w * 64 : 64;
            uint64_t word = 0;
            sum += word_stats(x, len, thr, &word);
            out[w] = word;
            count += __builtin_popcountll(word);
        }
        ((double *)tb.buf)[k] = sum;
        ((int64_t *)ab.buf)[k] = count;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&mb);
    PyBuffer_Release(&ab);
    PyBuffer_Release(&tb);
    PyBuffer_Release(&bb);
    Py_RETURN_NONE;
}

static PyObject *py_mask_paint(PyObject *self, PyObject *args) {
    Py_buffer bb, ob, nb, cb, pb;
    Py_ssize_t q, n;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nny*y*y*w*", &bb, &q, &n, &ob, &nb, &cb, &pb)) return NULL;
    Py_ssize_t words = (n + 63) / 64, k = ob.len / 8;
    int ok = q >= 0 && n >= 0 && bb.len == 8 * q * words && ob.len == 8 * k && nb.len == 4 * q && cb.len == 4 * q &&
             pb.len == 4 * n && PyBuffer_IsContiguous(&bb, 'C') && PyBuffer_IsContiguous(&ob, 'C') &&
             PyBuffer_IsContiguous(&nb, 'C') && PyBuffer_IsContiguous(&cb, 'C') && PyBuffer_IsContiguous(&pb, 'C');
    for (Py_ssize_t j = 0; ok && j < k; j++) ok = ((const int64_t *)ob.buf)[j] >= 0 && ((const int64_t *)ob.buf)[j] < q;
    uint64_t *taken = ok ? calloc(words ? words : 1, sizeof(uint64_t)) : NULL;
    if (taken && n % 64) taken[words - 1] = ~(uint64_t)0 << (n % 64);  /* the last word's bits past n: never free */
    int64_t *painted = ok ? malloc((k ? k : 1) * sizeof(int64_t)) : NULL;
    PyObject *res = NULL;
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "mask_paint: give q * ceil(n / 64) uint64 words, int64 queries below q, q "
                                          "float32 needs, q int32 codes and n int32 outputs, contiguous");
        goto done;
    }
    if (!taken || !painted) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t n_painted = 0;
    Py_BEGIN_ALLOW_THREADS
    const int64_t *order = ob.buf;
    const float *need = nb.buf;
    const int32_t *codes = cb.buf;
    int32_t *pan = pb.buf;
    int64_t instance = 1;
    for (Py_ssize_t j = 0; j < k; j++) {
        int64_t qq = order[j];
        const uint64_t *row = (const uint64_t *)bb.buf + qq * words;
        int64_t count = 0;
        for (Py_ssize_t w = 0; w < words; w++) count += __builtin_popcountll(row[w] & ~taken[w]);
        if (count == 0 || (float)count < need[qq]) continue;  /* a mask with no pixel left is no segment */
        int32_t code = codes[qq];
        if (code < 0) code = (int32_t)(-(int64_t)code - 1 + instance++ * INSTANCE_OFFSET);
        for (Py_ssize_t w = 0; w < words; w++) {
            uint64_t fresh = row[w] & ~taken[w];
            taken[w] |= fresh;
            while (fresh) {
                pan[w * 64 + __builtin_ctzll(fresh)] = code;
                fresh &= fresh - 1;
            }
        }
        painted[n_painted++] = qq;
    }
    Py_END_ALLOW_THREADS
    res = PyBytes_FromStringAndSize((const char *)painted, n_painted * (Py_ssize_t)sizeof(int64_t));
done:  /* the one way out: the buffers released, the memory freed */
    free(taken);
    free(painted);
    PyBuffer_Release(&bb);
    PyBuffer_Release(&ob);
    PyBuffer_Release(&nb);
    PyBuffer_Release(&cb);
    PyBuffer_Release(&pb);
    return res;
}

static PyMethodDef methods[] = {
    {"mask_stats", py_mask_stats, METH_VARARGS,
     "mask_stats(m, q, n, thr, area, total, bits): each mask's pixels above thr, their summed values, as bits"},
    {"mask_paint", py_mask_paint, METH_VARARGS,
     "mask_paint(bits, q, n, order, need, codes, pan) -> bytes: mask-wise merging's painting; the queries painted"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_merge", NULL, -1, methods};

PyMODINIT_FUNC PyInit__merge(void) { return PyModule_Create(&module); }
