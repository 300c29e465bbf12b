/* panbench.ops._cpu: mmcv 2.1.0's CPU kernels for nms and RoIAlign (forward), on contiguous buffers.
 *
 *   nms(boxes, order, select, iou_threshold, offset)
 *       boxes: float32 [n, 4] (x1, y1, x2, y2); order: int64 [n], the boxes by descending score (the
 *       caller sorts with torch, as mmcv does); select: one byte per sorted box, all 1 on entry, set to 0
 *       for each suppressed box.  The kept indices are order[select].
 *   roi_align(kind, input, rois, output, argmax_y, argmax_x, channels, height, width, pooled_height,
 *             pooled_width, spatial_scale, sampling_ratio, pool_mode, aligned)
 *       kind 'f' (float32) or 'd' (float64) for every buffer; input [N, C, H, W], rois [K, 5]
 *       (batch index, x1, y1, x2, y2), output [K, C, ph, pw]; argmax_y/argmax_x the same size as output
 *       for pool_mode 0 (max), ignored for pool_mode 1 (avg).  Returns False when aligned and an RoI has a
 *       negative size (mmcv asserts), True otherwise.
 *
 * These are line-for-line ports of mmcv/ops/csrc/pytorch/cpu/nms.cpp (nms_cpu) and cpu/roi_align.cpp
 * (pre_calc_for_bilinear_interpolate, ROIAlignForward): the same float arithmetic in the same order, so
 * the results are bit-identical (tests/ops/test_ops_mmcv_parity.py).  setup.py compiles this file with
 * -ffp-contract=off: a fused multiply-add would round differently.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

static float maxf(float a, float b) { return a < b ? b : a; } /* std::max */
static float minf(float a, float b) { return b < a ? b : a; } /* std::min */

static PyObject *nms(PyObject *self, PyObject *args) {
    Py_buffer bb, bo, bs;
    double thr_d;
    int offset;
    if (!PyArg_ParseTuple(args, "y*y*w*di", &bb, &bo, &bs, &thr_d, &offset)) return NULL;
    Py_ssize_t n = bo.len / 8;
    if (bb.len != n * 16 || bs.len != n) {
        PyBuffer_Release(&bb); PyBuffer_Release(&bo); PyBuffer_Release(&bs);
        PyErr_SetString(PyExc_ValueError, "nms: boxes, order and select sizes do not match");
        return NULL;
    }
    const float *boxes = (const float *)bb.buf;
    const int64_t *order = (const int64_t *)bo.buf;
    uint8_t *select = (uint8_t *)bs.buf;
    const float iou_threshold = (float)thr_d; /* mmcv's binding takes a C float */
    float *tmp = (float *)malloc(sizeof(float) * 5 * (size_t)(n > 0 ? n : 1));
    if (!tmp) {
        PyBuffer_Release(&bb); PyBuffer_Release(&bo); PyBuffer_Release(&bs);
        return PyErr_NoMemory();
    }
    /* The boxes copied in score order (x1[_i] is box order[_i]), so that the inner loop reads memory in
     * sequence and the compiler vectorises it; each comparison is the same float arithmetic as mmcv's.  mmcv
     * skips boxes already suppressed: here every later box is compared and its flag cleared (the same flags). */
    float *x1 = tmp, *y1 = tmp + n, *x2 = tmp + 2 * n, *y2 = tmp + 3 * n, *areas = tmp + 4 * n;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t _i = 0; _i < n; _i++) {
        const int64_t i = order[_i];
        x1[_i] = boxes[4 * i];
        y1[_i] = boxes[4 * i + 1];
        x2[_i] = boxes[4 * i + 2];
        y2[_i] = boxes[4 * i + 3];
        /* areas_t = (x2_t - x1_t + offset) * (y2_t - y1_t + offset), in float32 */
        areas[_i] = (x2[_i] - x1[_i] + (float)offset) * (y2[_i] - y1[_i] + (float)offset);
    }
    for (Py_ssize_t _i = 0; _i < n; _i++) {
        if (!select[_i]) continue;
        const float ix1 = x1[_i], iy1 = y1[_i], ix2 = x2[_i], iy2 = y2[_i], iarea = areas[_i];
        for (Py_ssize_t _j = _i + 1; _j < n; _j++) {
            const float xx1 = maxf(ix1, x1[_j]);
            const float yy1 = maxf(iy1, y1[_j]);
            const float xx2 = minf(ix2, x2[_j]);
            const float yy2 = minf(iy2, y2[_j]);
            const float w = maxf(0.f, xx2 - xx1 + offset);
            const float h = maxf(0.f, yy2 - yy1 + offset);
            const float inter = w * h;
            const float ovr = inter / (iarea + areas[_j] - inter);
            select[_j] &= (uint8_t)!(ovr > iou_threshold);
        }
    }
    Py_END_ALLOW_THREADS
    free(tmp);
    PyBuffer_Release(&bb); PyBuffer_Release(&bo); PyBuffer_Release(&bs);
    Py_RETURN_NONE;
}

/* ROIAlignForward<T> of mmcv's cpu/roi_align.cpp for T = float (suffix f) and T = double (suffix d).
 * Returns 0 when aligned and an RoI has a negative size. */
#define DEFINE_ROI_ALIGN(T, SUFFIX)                                                                           \
    typedef struct { int pos1, pos2, pos3, pos4; T w1, w2, w3, w4; } PreCalc_##SUFFIX;                        \
                                                                                                              \
    static void pre_calc_##SUFFIX(const int height, const int width, const int pooled_height,                 \
                                  const int pooled_width, const int iy_upper, const int ix_upper,             \
                                  T roi_start_h, T roi_start_w, T bin_size_h, T bin_size_w,                   \
                                  int roi_bin_grid_h, int roi_bin_grid_w, PreCalc_##SUFFIX *pre_calc) {       \
        int pre_calc_index = 0;                                                                               \
        for (int ph = 0; ph < pooled_height; ph++) {                                                          \
            for (int pw = 0; pw < pooled_width; pw++) {                                                       \
                for (int iy = 0; iy < iy_upper; iy++) {                                                       \
                    const T yy = roi_start_h + ph * bin_size_h +                                              \
                                 (T)(iy + .5f) * bin_size_h / (T)(roi_bin_grid_h);                            \
                    for (int ix = 0; ix < ix_upper; ix++) {                                                   \
                        const T xx = roi_start_w + pw * bin_size_w +                                          \
                                     (T)(ix + .5f) * bin_size_w / (T)(roi_bin_grid_w);                        \
                        T x = xx;                                                                             \
                        T y = yy;                                                                             \
                        PreCalc_##SUFFIX pc;                                                                  \
                        if (y < -1.0 || y > height || x < -1.0 || x > width) {                                \
                            pc.pos1 = pc.pos2 = pc.pos3 = pc.pos4 = 0;                                        \
                            pc.w1 = pc.w2 = pc.w3 = pc.w4 = 0;                                                \
                            pre_calc[pre_calc_index++] = pc;                                                  \
                            continue;                                                                         \
                        }                                                                                     \
                        if (y <= 0) y = 0;                                                                    \
                        if (x <= 0) x = 0;                                                                    \
                        int y_low = (int)y;                                                                   \
                        int x_low = (int)x;                                                                   \
                        int y_high, x_high;                                                                   \
                        if (y_low >= height - 1) {                                                            \
                            y_high = y_low = height - 1;                                                      \
                            y = (T)y_low;                                                                     \
                        } else {                                                                              \
                            y_high = y_low + 1;                                                               \
                        }                                                                                     \
                        if (x_low >= width - 1) {                                                             \
                            x_high = x_low = width - 1;                                                       \
                            x = (T)x_low;                                                                     \
                        } else {                                                                              \
                            x_high = x_low + 1;                                                               \
                        }                                                                                     \
                        T ly = y - y_low;                                                                     \
                        T lx = x - x_low;                                                                     \
                        T hy = 1. - ly, hx = 1. - lx;                                                         \
                        pc.pos1 = y_low * width + x_low;                                                      \
                        pc.pos2 = y_low * width + x_high;                                                     \
                        pc.pos3 = y_high * width + x_low;                                                     \
                        pc.pos4 = y_high * width + x_high;                                                    \
                        pc.w1 = hy * hx;                                                                      \
                        pc.w2 = hy * lx;                                                                      \
                        pc.w3 = ly * hx;                                                                      \
                        pc.w4 = ly * lx;                                                                      \
                        pre_calc[pre_calc_index++] = pc;                                                      \
                    }                                                                                         \
                }                                                                                             \
            }                                                                                                 \
        }                                                                                                     \
    }                                                                                                         \
                                                                                                              \
    static int roi_align_##SUFFIX(const T *input, const T *rois, T *output, T *argmax_y, T *argmax_x,         \
                                  const Py_ssize_t n_rois, const int pooled_height, const int pooled_width,   \
                                  const T spatial_scale, const int sampling_ratio, const int pool_mode,       \
                                  const int aligned, const int channels, const int height, const int width) { \
        PreCalc_##SUFFIX *pre_calc = NULL;                                                                    \
        size_t capacity = 0;                                                                                  \
        for (Py_ssize_t n = 0; n < n_rois; n++) {                                                             \
            const Py_ssize_t index_n = n * channels * pooled_width * pooled_height;                           \
            const T *offset_rois = rois + n * 5;                                                              \
            int roi_batch_ind = (int)offset_rois[0];                                                          \
            T offset = aligned ? (T)0.5 : (T)0.0;                                                             \
            T roi_start_w = offset_rois[1] * spatial_scale - offset;                                          \
            T roi_start_h = offset_rois[2] * spatial_scale - offset;                                          \
            T roi_end_w = offset_rois[3] * spatial_scale - offset;                                            \
            T roi_end_h = offset_rois[4] * spatial_scale - offset;                                            \
            T roi_width = roi_end_w - roi_start_w;                                                            \
            T roi_height = roi_end_h - roi_start_h;                                                           \
            if (aligned) {                                                                                    \
                if (!(roi_width >= 0 && roi_height >= 0)) { free(pre_calc); return 0; }                      \
            } else {                                                                                          \
                roi_width = roi_width < (T)1. ? (T)1. : roi_width;                                            \
                roi_height = roi_height < (T)1. ? (T)1. : roi_height;                                         \
            }                                                                                                 \
            T bin_size_h = (T)(roi_height) / (T)(pooled_height);                                              \
            T bin_size_w = (T)(roi_width) / (T)(pooled_width);                                                \
            int roi_bin_grid_h = (sampling_ratio > 0) ? sampling_ratio : ceilf(roi_height / pooled_height);   \
            int roi_bin_grid_w = (sampling_ratio > 0) ? sampling_ratio : ceilf(roi_width / pooled_width);     \
            const int grid = roi_bin_grid_h * roi_bin_grid_w;                                                 \
            const T count = (T)(grid > 1 ? grid : 1);                                                         \
            const size_t need = (size_t)(grid > 0 ? grid : 0) * pooled_width * pooled_height;                 \
            if (need > capacity) {                                                                            \
                free(pre_calc);                                                                               \
                pre_calc = (PreCalc_##SUFFIX *)malloc(sizeof(PreCalc_##SUFFIX) * need);                       \
                if (!pre_calc) return -1;                                                                     \
                capacity = need;                                                                              \
            }                                                                                                 \
            pre_calc_##SUFFIX(height, width, pooled_height, pooled_width, roi_bin_grid_h, roi_bin_grid_w,     \
                              roi_start_h, roi_start_w, bin_size_h, bin_size_w, roi_bin_grid_h,               \
                              roi_bin_grid_w, pre_calc);                                                      \
            for (int c = 0; c < channels; c++) {                                                              \
                const Py_ssize_t index_n_c = index_n + (Py_ssize_t)c * pooled_width * pooled_height;          \
                const T *offset_input = input + ((Py_ssize_t)roi_batch_ind * channels + c) * height * width;  \
                int pre_calc_index = 0;                                                                       \
                for (int ph = 0; ph < pooled_height; ph++) {                                                  \
                    for (int pw = 0; pw < pooled_width; pw++) {                                               \
                        const Py_ssize_t index = index_n_c + ph * pooled_width + pw;                          \
                        T output_val = 0.;                                                                    \
                        T maxval = -10000;                                                                    \
                        T maxidx_y = -1.f, maxidx_x = -1.f;                                                   \
                        for (int iy = 0; iy < roi_bin_grid_h; iy++) {                                         \
                            const T y = roi_start_h + ph * bin_size_h +                                       \
                                        (T)(iy + .5f) * bin_size_h / (T)(roi_bin_grid_h);                     \
                            for (int ix = 0; ix < roi_bin_grid_w; ix++) {                                     \
                                const PreCalc_##SUFFIX pc = pre_calc[pre_calc_index];                         \
                                T val = pc.w1 * offset_input[pc.pos1] + pc.w2 * offset_input[pc.pos2] +       \
                                        pc.w3 * offset_input[pc.pos3] + pc.w4 * offset_input[pc.pos4];        \
                                if (pool_mode == 0 && val > maxval) {                                         \
                                    maxval = val;                                                             \
                                    maxidx_y = y;                                                             \
                                    maxidx_x = roi_start_w + pw * bin_size_w +                                \
                                               (T)(ix + .5f) * bin_size_w / (T)(roi_bin_grid_w);              \
                                }                                                                             \
                                output_val += val;                                                            \
                                pre_calc_index += 1;                                                          \
                            }                                                                                 \
                        }                                                                                     \
                        if (pool_mode == 0) {                                                                 \
                            output[index] = maxval;                                                           \
                            argmax_y[index] = maxidx_y;                                                       \
                            argmax_x[index] = maxidx_x;                                                       \
                        } else if (pool_mode == 1) {                                                          \
                            output[index] = output_val / count;                                               \
                        }                                                                                     \
                    }                                                                                         \
                }                                                                                             \
            }                                                                                                 \
        }                                                                                                     \
        free(pre_calc);                                                                                       \
        return 1;                                                                                             \
    }

DEFINE_ROI_ALIGN(float, f)
DEFINE_ROI_ALIGN(double, d)

static PyObject *roi_align(PyObject *self, PyObject *args) {
    int kind;
    Py_buffer bi, br, bo, by, bx;
    int channels, height, width, pooled_height, pooled_width, sampling_ratio, pool_mode, aligned;
    double scale_d;
    if (!PyArg_ParseTuple(args, "Cy*y*w*w*w*iiiiidiip", &kind, &bi, &br, &bo, &by, &bx, &channels, &height,
                          &width, &pooled_height, &pooled_width, &scale_d, &sampling_ratio, &pool_mode, &aligned))
        return NULL;
    const Py_ssize_t item = kind == 'f' ? 4 : 8;
    const Py_ssize_t n_rois = br.len / (5 * item);
    const Py_ssize_t out_n = n_rois * channels * pooled_height * pooled_width;
    int ok = (kind == 'f' || kind == 'd') && bo.len == out_n * item && bi.len % item == 0 &&
             (pool_mode != 0 || (by.len == out_n * item && bx.len == out_n * item));
    if (!ok) {
        PyBuffer_Release(&bi); PyBuffer_Release(&br); PyBuffer_Release(&bo); PyBuffer_Release(&by);
        PyBuffer_Release(&bx);
        PyErr_SetString(PyExc_ValueError, "roi_align: buffer sizes or kind do not match");
        return NULL;
    }
    const float spatial_scale = (float)scale_d; /* mmcv's binding takes a C float, then casts it to T */
    int res;
    Py_BEGIN_ALLOW_THREADS
    if (kind == 'f')
        res = roi_align_f((const float *)bi.buf, (const float *)br.buf, (float *)bo.buf, (float *)by.buf,
                          (float *)bx.buf, n_rois, pooled_height, pooled_width, (float)spatial_scale, sampling_ratio,
                          pool_mode, aligned, channels, height, width);
    else
        res = roi_align_d((const double *)bi.buf, (const double *)br.buf, (double *)bo.buf, (double *)by.buf,
                          (double *)bx.buf, n_rois, pooled_height, pooled_width, (double)spatial_scale,
                          sampling_ratio, pool_mode, aligned, channels, height, width);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&bi); PyBuffer_Release(&br); PyBuffer_Release(&bo); PyBuffer_Release(&by);
    PyBuffer_Release(&bx);
    if (res < 0) return PyErr_NoMemory();
    return PyBool_FromLong(res);
}

static PyMethodDef methods[] = {
    {"nms", nms, METH_VARARGS, "mmcv's nms_cpu suppression loop on float32 boxes sorted by order."},
    {"roi_align", roi_align, METH_VARARGS, "mmcv's ROIAlignForward (CPU) on float32 or float64 buffers."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_cpu",
                                    "mmcv 2.1.0's CPU nms and RoIAlign forward kernels, ported to C.", -1, methods};

PyMODINIT_FUNC PyInit__cpu(void) { return PyModule_Create(&module); }
