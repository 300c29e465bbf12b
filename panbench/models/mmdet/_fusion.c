/* panbench.models.mmdet._fusion: the per-pixel loop of the MaskFormer fusion, in C.
 *
 *   first_argmax(x, k, n, out)
 *       For each of n pixels, the first index of the largest of its k values (x: k * n contiguous float32, one
 *       row of n per query; out: n int64): torch's `x.argmax(0)`, a NaN counting as the largest (its first index
 *       wins), ties to the first index.  Pixels are taken in blocks that stay in cache, so each value is read
 *       once.  Releases the GIL.
 *   first_argmax_scaled(x, rows, scores, n, out)
 *       The same of the k values scores[q] * x[rows[q]] (x: r * n contiguous float32; rows: k int64 in [0, r);
 *       scores: k float32), each product rounded to float32 as torch's multiply rounds it: the argmax of
 *       `scores[:, None] * x[rows]` without making either tensor.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#define BLOCK 512

static void argmax_block(const float *x, Py_ssize_t k, Py_ssize_t n, Py_ssize_t p0, Py_ssize_t len, int64_t *out) {
    float best[BLOCK];
    int32_t idx[BLOCK];
    const float *row = x + p0;
    for (Py_ssize_t p = 0; p < len; p++) {
        best[p] = row[p];
        idx[p] = 0;
    }
    for (Py_ssize_t q = 1; q < k; q++) {
        row = x + q * n + p0;
        const int32_t qq = (int32_t)q;
        for (Py_ssize_t p = 0; p < len; p++) {
            float v = row[p], b = best[p];
            /* greater, or a NaN where the best so far is not one (a NaN compares false with everything); as
             * masks and selects, which the compiler turns into vector compares and blends */
            int32_t up = -(int32_t)((v > b) | ((v != v) & (b == b)));
            best[p] = up ? v : b;
            idx[p] = (idx[p] & ~up) | (qq & up);
        }
    }
    for (Py_ssize_t p = 0; p < len; p++) out[p0 + p] = idx[p];
}

static void scaled_block(const float *x, const int64_t *rows, const float *s, Py_ssize_t k, Py_ssize_t n,
                         Py_ssize_t p0, Py_ssize_t len, int64_t *out) {
    float best[BLOCK];
    int32_t idx[BLOCK];
    const float *row = x + rows[0] * n + p0;
    const float s0 = s[0];
    for (Py_ssize_t p = 0; p < len; p++) {
        best[p] = s0 * row[p];
        idx[p] = 0;
    }
    for (Py_ssize_t q = 1; q < k; q++) {
        row = x + rows[q] * n + p0;
        const float sq = s[q];
        const int32_t qq = (int32_t)q;
        for (Py_ssize_t p = 0; p < len; p++) {
            float v = sq * row[p], b = best[p];
            int32_t up = -(int32_t)((v > b) | ((v != v) & (b == b)));
            best[p] = up ? v : b;
            idx[p] = (idx[p] & ~up) | (qq & up);
        }
    }
    for (Py_ssize_t p = 0; p < len; p++) out[p0 + p] = idx[p];
}

static PyObject *py_first_argmax_scaled(PyObject *self, PyObject *args) {
    Py_buffer xb, rb, sb, ob;
    Py_ssize_t n;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*y*nw*", &xb, &rb, &sb, &n, &ob)) return NULL;
    Py_ssize_t k = rb.len / 8, r = n > 0 ? xb.len / (4 * n) : 0;
    int ok = k >= 1 && n > 0 && rb.len == 8 * k && sb.len == 4 * k && xb.len == 4 * r * n && ob.len == 8 * n &&
             PyBuffer_IsContiguous(&xb, 'C') && PyBuffer_IsContiguous(&rb, 'C') && PyBuffer_IsContiguous(&sb, 'C') &&
             PyBuffer_IsContiguous(&ob, 'C');
    for (Py_ssize_t q = 0; ok && q < k; q++) ok = ((const int64_t *)rb.buf)[q] >= 0 && ((const int64_t *)rb.buf)[q] < r;
    if (!ok) {
        PyBuffer_Release(&xb);
        PyBuffer_Release(&rb);
        PyBuffer_Release(&sb);
        PyBuffer_Release(&ob);
        PyErr_SetString(PyExc_ValueError, "first_argmax_scaled: give r * n float32 values, k int64 rows below r, "
                                          "k float32 scores and n int64 outputs, contiguous");
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t p0 = 0; p0 < n; p0 += BLOCK)
        scaled_block(xb.buf, rb.buf, sb.buf, k, n, p0, n - p0 < BLOCK ? n - p0 : BLOCK, ob.buf);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&xb);
    PyBuffer_Release(&rb);
    PyBuffer_Release(&sb);
    PyBuffer_Release(&ob);
    Py_RETURN_NONE;
}

static PyObject *py_first_argmax(PyObject *self, PyObject *args) {
    Py_buffer xb, ob;
    Py_ssize_t k, n;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nnw*", &xb, &k, &n, &ob)) return NULL;
    if (k < 1 || n < 0 || xb.len != 4 * k * n || ob.len != 8 * n || !PyBuffer_IsContiguous(&xb, 'C') ||
        !PyBuffer_IsContiguous(&ob, 'C')) {
        PyBuffer_Release(&xb);
        PyBuffer_Release(&ob);
        PyErr_SetString(PyExc_ValueError, "first_argmax: give k * n contiguous float32 values and n int64 outputs");
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t p0 = 0; p0 < n; p0 += BLOCK)
        argmax_block(xb.buf, k, n, p0, n - p0 < BLOCK ? n - p0 : BLOCK, ob.buf);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&xb);
    PyBuffer_Release(&ob);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"first_argmax", py_first_argmax, METH_VARARGS, "first_argmax(x, k, n, out): x.argmax(0) of k x n float32"},
    {"first_argmax_scaled", py_first_argmax_scaled, METH_VARARGS,
     "first_argmax_scaled(x, rows, scores, n, out): (scores[:, None] * x[rows]).argmax(0), float32"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fusion", NULL, -1, methods};

PyMODINIT_FUNC PyInit__fusion(void) { return PyModule_Create(&module); }
