/* panbench.pq._match: match_image (panbench/pq/matching.py) in C.
 *
 *   match(inter, n_gt, n_pred, gt_cats, gt_areas, gt_iscrowd, pred_cats, pred_areas)
 *       -> (ints, floats, bools, n_tp, n_fn, n_fp, n_nc)  or None
 *
 * The table, the packed layout (three bytearrays: ints, floats, bools) and the bit-for-bit rules are those of
 * _match_core.h, which holds the code (_native.c runs the same on its threads).  None means "a ground truth or
 * prediction with two IoU > 0.5 matches", which a table counted from pixels cannot give: the caller then takes
 * the numpy path, which handles any table.
 *
 *   areas(inter, n_gt, n_pred, gt_areas, pred_areas) -> None | (side, index)
 *   fold(inter, n_gt, n_pred, gt_cats, pred_cats) -> (packed, m, unlisted)
 *       The area checks and the semantic fold of the same table (each documented at its function).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "_match_core.h"

static PyObject *py_match(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer bi, bgc, bga, bcr, bpc, bpa;
    Py_ssize_t G, P;
    if (!PyArg_ParseTuple(args, "y*nny*y*y*y*y*", &bi, &G, &P, &bgc, &bga, &bcr, &bpc, &bpa)) return NULL;
    PyObject *result = NULL, *oi = NULL, *of = NULL, *ob = NULL;
    void *mem = NULL;
    if (G < 0 || P < 0 || bi.len != (G + 2) * (P + 1) * 8 || bgc.len != G * 8 || bga.len != G * 8 ||
        bcr.len != G || bpc.len != P * 8 || bpa.len != P * 8) {
        PyErr_SetString(PyExc_ValueError, "match: expected an (n_gt + 2) x (n_pred + 1) int64 table, int64 "
                                          "cats/areas and one byte per crowd flag");
        goto done;
    }
    const int64_t *inter = bi.buf, *gc = bgc.buf, *ga = bga.buf, *pc = bpc.buf, *pa = bpa.buf;
    const uint8_t *crowd = bcr.buf;
    scratch s;
    mem = pb_scratch_init(&s, G, P);
    if (!mem) {
        PyErr_NoMemory();
        goto done;
    }
    pb_match_sizes n;
    int two;
    Py_BEGIN_ALLOW_THREADS
    two = pb_match(inter, G, P, gc, ga, crowd, pc, pa, &s, &n);
    Py_END_ALLOW_THREADS
    if (two) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    oi = PyByteArray_FromStringAndSize(NULL, pb_match_ints(&n) * 8);
    of = PyByteArray_FromStringAndSize(NULL, pb_match_floats(&n) * 8);
    ob = PyByteArray_FromStringAndSize(NULL, n.fp);
    if (!oi || !of || !ob) goto done;
    pb_match_write(&n, G, P, gc, ga, crowd, pc, pa, &s, (int64_t *)PyByteArray_AS_STRING(oi),
                   (double *)PyByteArray_AS_STRING(of), (uint8_t *)PyByteArray_AS_STRING(ob));
    result = Py_BuildValue("(OOOnnnn)", oi, of, ob, n.tp, n.fn, n.fp, n.nc);
done:
    free(mem);
    Py_XDECREF(oi);
    Py_XDECREF(of);
    Py_XDECREF(ob);
    PyBuffer_Release(&bi);
    PyBuffer_Release(&bgc);
    PyBuffer_Release(&bga);
    PyBuffer_Release(&bcr);
    PyBuffer_Release(&bpc);
    PyBuffer_Release(&bpa);
    return result;
}

/* areas(inter, n_gt, n_pred, gt_areas, pred_areas) -> None | (0, g) | (1, p)
 * The checks of evaluator._match on the same table: (0, g) for the first ground truth whose pixels (row
 * g + 1, every column) exceed its JSON area; else the predictions' areas (columns 1..n_pred, every row)
 * go into pred_areas and (1, p) names the first that is 0.  None: both checks pass. */
static PyObject *py_areas(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer bi, bga, bpa;
    Py_ssize_t G, P;
    if (!PyArg_ParseTuple(args, "y*nny*w*", &bi, &G, &P, &bga, &bpa)) return NULL;
    PyObject *result = NULL;
    if (G < 0 || P < 0 || bi.len != (G + 2) * (P + 1) * 8 || bga.len != G * 8 || bpa.len != P * 8) {
        PyErr_SetString(PyExc_ValueError, "areas: expected an (n_gt + 2) x (n_pred + 1) int64 table, int64 areas");
    } else {
        int side = 0;
        Py_ssize_t bad = pb_areas(bi.buf, G, P, bga.buf, bpa.buf, &side);
        result = bad >= 0 ? Py_BuildValue("(in)", side, bad) : Py_NewRef(Py_None);
    }
    PyBuffer_Release(&bi);
    PyBuffer_Release(&bga);
    PyBuffer_Release(&bpa);
    return result;
}

/* fold(inter, n_gt, n_pred, gt_cats, pred_cats) -> (packed, m, unlisted)
 * matching.semantic_pairs and evaluator.unlisted_pixels on the same table: the m non-zero cells of rows
 * 0..n_gt in row-major order as (ground-truth category, predicted category, pixels), VOID = -1, packed as
 * int64 [m] x 3 in one bytearray; unlisted = the pixels of row n_gt + 1. */
static PyObject *py_fold(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer bi, bgc, bpc;
    Py_ssize_t G, P;
    if (!PyArg_ParseTuple(args, "y*nny*y*", &bi, &G, &P, &bgc, &bpc)) return NULL;
    PyObject *result = NULL;
    if (G < 0 || P < 0 || bi.len != (G + 2) * (P + 1) * 8 || bgc.len != G * 8 || bpc.len != P * 8) {
        PyErr_SetString(PyExc_ValueError, "fold: expected an (n_gt + 2) x (n_pred + 1) int64 table, int64 cats");
    } else {
        int64_t unlisted;
        Py_ssize_t m = pb_fold_size(bi.buf, G, P, &unlisted);
        PyObject *packed = PyByteArray_FromStringAndSize(NULL, 3 * m * 8);
        if (packed) {
            pb_fold_write(bi.buf, G, P, bgc.buf, bpc.buf, m, (int64_t *)PyByteArray_AS_STRING(packed));
            result = Py_BuildValue("(NnL)", packed, m, (long long)unlisted);
        }
    }
    PyBuffer_Release(&bi);
    PyBuffer_Release(&bgc);
    PyBuffer_Release(&bpc);
    return result;
}

static PyMethodDef methods[] = {
    {"match", py_match, METH_VARARGS, "match_image of panbench.pq.matching, packed (see the module source)."},
    {"areas", py_areas, METH_VARARGS, "The area checks of evaluator._match and the predictions' areas."},
    {"fold", py_fold, METH_VARARGS, "semantic_pairs and unlisted_pixels of one table, packed."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_match", "panbench's per-image match in C.",
                                    -1, methods};

PyMODINIT_FUNC PyInit__match(void) { return PyModule_Create(&module); }
